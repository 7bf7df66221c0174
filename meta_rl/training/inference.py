"""Training a mapping's task encoder (:mod:`meta_rl.mapping.inference`) from its family's
own probes.

The probe policy is the mapping's prediction for the default task. It probes each of the
mapping's training tasks (``TrainedMapping.training_tasks``), and more from the same
stream of its split (the way the off-policy objectives draw theirs; validation and test
tasks are never among them) up to ``tasks``, a few times each; the encoder
learns to give the task's descriptor from each probe's first ``n`` transitions, ``n``
drawn between ``min_steps`` and ``probe_steps`` (Gaussian negative log-likelihood of the
true descriptor under the belief). Every fifth training task, with the split's validation
tasks, is held out: the report's per-feature error and R^2 come from probes of those. No
test task is ever probed.

``meta-rl train --inference`` trains one at the end of a run; ``meta-rl add-inference``
adds one to an existing checkpoint.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from meta_rl.envs import Task
from meta_rl.errors import ConfigError
from meta_rl.infra.threads import torch_threads
from meta_rl.mapping.inference import (
    IDENTIFIED,
    TaskEncoder,
    TaskInference,
    run_probe,
    transition_width,
)

if TYPE_CHECKING:
    from meta_rl.mapping.checkpoint import TrainedMapping

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class InferenceConfig:
    """Settings of a task encoder's training.

    Attributes:
        probe_steps: The longest probe trained on, and the one validated.
        min_steps: The shortest probe trained on (shorter ones are refused at use).
        noise: Action noise of the probe (a fraction of the half-range, or the chance of
            a random discrete action).
        hidden: Hidden sizes of the encoder's MLP.
        tasks: Tasks probed: the mapping's training tasks, then more drawn from its split's
            training stream, up to this many (an encoder needs many tasks to tell features
            apart; the mapping may have trained on few).
        probes_per_task: Probes of each task (different seeds).
        updates: Adam steps.
        batch: Probes per step.
        lr: Adam's learning rate.
    """

    probe_steps: int = 200
    min_steps: int = 20
    noise: float = 0.3
    hidden: tuple[int, ...] = (128, 128)
    tasks: int = 256
    probes_per_task: int = 4
    updates: int = 3000
    batch: int = 64
    lr: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("probe_steps", "min_steps", "tasks", "probes_per_task", "updates", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.min_steps > self.probe_steps:
            raise ConfigError(
                f"min_steps ({self.min_steps}) must not exceed probe_steps ({self.probe_steps}) "
                "(on the command line: --min-steps, --probe-steps)"
            )
        if not 0 <= self.noise <= 1:
            raise ConfigError(f"noise must be in [0, 1], got {self.noise!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ConfigError(f"hidden must be positive layer sizes, got {self.hidden!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))


def probe_params(trained: TrainedMapping) -> torch.Tensor:
    """The probe's policy: the mapping's prediction for the default task."""
    return trained.predict(None)


def _probes(
    trained: TrainedMapping, tasks: list[Task], config: InferenceConfig, seed: int
) -> np.ndarray:
    """``(len(tasks) * probes_per_task, probe_steps, width)``: every task's probes."""
    params = probe_params(trained)
    out = []
    for i, task in enumerate(tasks):
        env = trained.family.make(task=task, extrapolate=True)
        try:
            for j in range(config.probes_per_task):
                out.append(
                    run_probe(
                        trained.spec,
                        params,
                        env,
                        steps=config.probe_steps,
                        noise=config.noise,
                        seed=seed + 1000 * i + j,
                    )
                )
        finally:
            env.close()
    return np.stack(out)


def encoder_tasks(trained: TrainedMapping, n: int) -> list[Task]:
    """The mapping's training tasks, then more drawn from its split's training region with
    the split's seed (never a validation or test task), up to ``n``."""
    tasks = list(trained.training_tasks)
    if len(tasks) < n:
        info = trained.info
        stream = trained.task_space.split(
            n, 0, kind=info.get("split_kind", "interpolation"), seed=int(info.get("split_seed", 0))
        ).train
        tasks += [t for t in stream if t not in tasks][: n - len(tasks)]
    return tasks


def split_tasks(trained: TrainedMapping, n: int = 256) -> tuple[list[Task], list[Task]]:
    """The encoder's training tasks and its held-out ones (every fifth of
    :func:`encoder_tasks`, and the split's validation tasks)."""
    tasks = encoder_tasks(trained, n)
    val = [t for i, t in enumerate(tasks) if i % 5 == 4]
    train = [t for i, t in enumerate(tasks) if i % 5 != 4]
    val += [t for t in (trained.info.get("split") or {}).get("val") or [] if t not in train]
    if len(train) < 2 or len(val) < 2:
        raise ConfigError(
            f"an inference model needs at least 4 tasks to learn from, got {len(tasks)}; "
            "raise InferenceConfig.tasks"
        )
    return train, val


def train_inference(
    trained: TrainedMapping, config: InferenceConfig | None = None, *, seed: int = 0
) -> TaskInference:
    """Probe ``trained``'s training tasks, fit a task encoder, and score it on the held-out
    tasks (the module says which). The same seed gives the same encoder.

    Returns:
        The encoder; its ``report`` holds the validation scores, the env steps of every
        probe (``env_steps``) and the wall time (``seconds``).
    """
    config = config or InferenceConfig()
    started = time.time()
    train_tasks, val_tasks = split_tasks(trained, config.tasks)
    space = trained.task_space
    arch = trained.arch
    width = transition_width(arch.obs_dim, arch.action_dim)
    with torch_threads(1):
        data = _probes(trained, train_tasks, config, seed)
        targets = np.repeat(
            np.stack([space.to_descriptor(t, extrapolate=True) for t in train_tasks]),
            config.probes_per_task,
            axis=0,
        ).astype(np.float32)
        flat = data.reshape(-1, width)
        mean = flat.mean(0)
        std = flat.std(0)
        std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        x = torch.as_tensor((data - mean) / std, dtype=torch.float32)
        y = torch.as_tensor(targets)
        encoder = _fit(x, y, space.dim, config, seed)
        tensors = {
            "input_mean": torch.as_tensor(mean, dtype=torch.float32),
            "input_std": torch.as_tensor(std, dtype=torch.float32),
            **{f"net.{k}": v.detach().clone() for k, v in encoder.net.state_dict().items()},
        }
        model = TaskInference(
            hidden=config.hidden,
            probe_steps=config.probe_steps,
            min_steps=config.min_steps,
            noise=config.noise,
            tensors=tensors,
        )
        val_data = _probes(trained, val_tasks, config, seed + 10**6)
        report = validation_report(model, trained, val_tasks, val_data, config.probes_per_task)
    steps = (len(train_tasks) + len(val_tasks)) * config.probes_per_task * config.probe_steps
    report.update(
        train_tasks=len(train_tasks),
        env_steps=steps,
        seconds=round(time.time() - started, 1),
        config={"probes_per_task": config.probes_per_task, "updates": config.updates},
    )
    return replace(model, report=report)


def _fit(
    x: torch.Tensor, y: torch.Tensor, dim: int, config: InferenceConfig, seed: int
) -> TaskEncoder:
    """Adam on the belief's negative log-likelihood of ``y``, each probe cut to a random
    length in ``[min_steps, probe_steps]``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = TaskEncoder(x.shape[-1], dim, config.hidden)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=config.lr)
    steps = torch.arange(x.shape[1])
    for _ in range(config.updates):
        pick = torch.randint(len(x), (config.batch,), generator=generator)
        lengths = torch.randint(
            config.min_steps, config.probe_steps + 1, (config.batch, 1), generator=generator
        )
        mean, std = encoder(x[pick], steps[None] < lengths)
        loss = (0.5 * ((y[pick] - mean) / std) ** 2 + torch.log(std)).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()
    return encoder


def validation_report(
    model: TaskInference,
    trained: TrainedMapping,
    tasks: list[Task],
    probes: np.ndarray,
    per_task: int,
) -> dict[str, Any]:
    """Per feature, on the held-out probes (full length): RMSE in descriptor units, R^2
    (the share of the features' spread across tasks the belief explains), the belief's
    mean std, and whether the feature counts as identified (R^2 >= :data:`IDENTIFIED`)."""
    space = trained.task_space
    truth = np.repeat(
        np.stack([space.to_descriptor(t, extrapolate=True) for t in tasks]), per_task, axis=0
    )
    means, stds = zip(*(model.belief(p) for p in probes), strict=True)
    mean, std = np.stack(means), np.stack(stds)
    features = {}
    for k, name in enumerate(space.names):
        err = mean[:, k] - truth[:, k]
        spread = float(((truth[:, k] - truth[:, k].mean()) ** 2).mean())
        r2 = 1 - float((err**2).mean()) / spread if spread > 0 else float("nan")
        features[name] = {
            "rmse": round(float(np.sqrt((err**2).mean())), 4),
            "r2": round(r2, 4),
            "belief_std": round(float(std[:, k].mean()), 4),
            "identified": bool(r2 >= IDENTIFIED),
        }
    return {"probe_steps": model.probe_steps, "val_tasks": len(tasks), "features": features}


def describe(report: dict[str, Any]) -> list[str]:
    """Lines that say, per feature, what the probe identifies."""
    lines = [
        f"inference: probes of {report.get('probe_steps')} steps, "
        f"{report.get('val_tasks')} held-out tasks"
    ]
    for name, row in report.get("features", {}).items():
        verdict = "identified" if row["identified"] else "not identified from transitions"
        lines.append(
            f"  {name}: R^2 {row['r2']:.2f}, RMSE {row['rmse']:.3f} (descriptor units): {verdict}"
        )
    return lines
