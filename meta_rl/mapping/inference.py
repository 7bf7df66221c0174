"""Inferring a task's descriptor from a short probe of its env.

A mapping predicts a policy from the task's descriptor. Where the task's parameters are
unknown (a simulator never calibrated, a robot's friction), a **probe** finds them: the
policy the mapping predicts for the default task acts in the env for a few steps, with
seeded noise on its actions (:func:`run_probe`), and a **task encoder** reads the
transitions and returns a Gaussian belief over the descriptor (:class:`TaskInference`).

The encoder is permutation-invariant: each transition ``x = [s, a, r, s' - s]`` (an
action one-hot for discrete actions; normalised by the training probes' statistics) gives,
through one MLP, a Gaussian factor ``N(mu_i, 1 / exp(l_i))`` per descriptor feature, and
the belief is their product with a standard normal prior::

    precision = 1 + sum_i exp(l_i)
    mean      = sum_i exp(l_i) mu_i / precision

Any probe length works, the order of the transitions does not matter, and more steps give a
narrower belief. A feature the transitions cannot identify keeps a wide belief near the
training tasks' mean: in Pendulum only ``g / l``, ``m l^2`` and ``max_torque`` shape what
the policy sees, so ``m``, ``l`` and ``g`` each are known only through those. The
validation report (:attr:`TaskInference.report`) says per feature how much of its spread
the probe explains (R^2).

The encoder is trained by :func:`meta_rl.training.inference.train_inference` and kept in
the checkpoint beside the mapping (tensors prefixed :data:`PREFIX`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from meta_rl.errors import ConfigError, FamilyError
from meta_rl.mapping.policy import PolicySpec

PREFIX = "inference."
"""Prefix of the task encoder's tensors in a checkpoint."""
LOG_PRECISION = 8.0
"""Bound on each transition's log precision: no single step can settle a feature."""
OUTLIER = 8.0
"""A probe whose transitions lie, on average, further than this many training standard
deviations from the training probes' mean in some feature is refused: it is not an env of
the family the encoder knows."""
IDENTIFIED = 0.5
"""A feature counts as identified where the probe explains at least this share (R^2) of its
spread across the validation tasks."""


def transition_width(obs_dim: int, action_dim: int) -> int:
    """Width of one transition's features: ``s``, ``a`` (or its one-hot), ``r``, ``s' - s``."""
    return 2 * obs_dim + action_dim + 1


def transition(
    obs: np.ndarray,
    action: np.ndarray | int,
    reward: float,
    next_obs: np.ndarray,
    n_actions: int | None,
) -> np.ndarray:
    """One transition's features (``n_actions``: the count of a discrete action space)."""
    obs = np.asarray(obs, dtype=np.float32).ravel()
    if n_actions is None:
        a = np.asarray(action, dtype=np.float32).ravel()
    else:
        a = np.zeros(n_actions, dtype=np.float32)
        a[int(action)] = 1.0
    after = np.asarray(next_obs, dtype=np.float32).ravel()
    return np.concatenate([obs, a, np.float32([reward]), after - obs]).astype(np.float32)


def run_probe(
    spec: PolicySpec,
    params: torch.Tensor,
    env: gym.Env,
    *,
    steps: int,
    noise: float,
    seed: int,
) -> np.ndarray:
    """``steps`` env steps of the policy ``params`` (deterministic action plus noise: a
    Gaussian of std ``noise`` times the action half-range for Box actions, a uniformly
    random action with probability ``noise`` for discrete ones), from a reset seeded
    ``seed``; episodes that end are reset with seeds drawn from ``seed``. Returns the
    transitions' features, ``(steps, width)``. The same seed gives the same probe."""
    from meta_rl.evaluation import ParamsPolicy  # evaluation imports this package

    if steps < 1:
        raise ConfigError(f"a probe needs at least 1 step, got {steps}")
    rng = np.random.default_rng(seed)
    space = env.action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    n_actions = int(space.n) if discrete else None
    policy = ParamsPolicy(spec, params, space)
    rows = []
    obs, _ = env.reset(seed=int(seed))
    for _ in range(steps):
        action = policy(obs)
        if discrete:
            if rng.random() < noise:
                action = int(rng.integers(n_actions))
        else:
            half = (space.high - space.low) / 2
            jitter = noise * half * rng.standard_normal(np.shape(action))
            action = np.clip(action + jitter, space.low, space.high).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append(transition(obs, action, float(reward), next_obs, n_actions))
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
    return np.stack(rows)


class TaskEncoder(nn.Module):
    """Per-transition Gaussian factors, multiplied into one belief (the module's formula)."""

    def __init__(self, width: int, dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        inputs = width
        for size in hidden:
            layers += [nn.Linear(inputs, size), nn.ReLU()]
            inputs = size
        layers.append(nn.Linear(inputs, 2 * dim))
        self.net = nn.Sequential(*layers)
        self.dim = dim

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Belief mean and std, ``(B, dim)`` each, from normalised transitions ``(B, T,
        width)``; ``mask`` ``(B, T)`` marks the transitions that count."""
        out = self.net(x)
        mu = out[..., : self.dim]
        precision = out[..., self.dim :].clamp(-LOG_PRECISION, LOG_PRECISION).exp()
        if mask is not None:
            precision = precision * mask[..., None].to(precision.dtype)
        total = 1.0 + precision.sum(-2)
        mean = (precision * mu).sum(-2) / total
        return mean, total.rsqrt()


def encoder_shapes(width: int, dim: int, hidden: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """The checkpoint tensors of an encoder (names with :data:`PREFIX`) and their shapes."""
    shapes: dict[str, tuple[int, ...]] = {
        f"{PREFIX}input_mean": (width,),
        f"{PREFIX}input_std": (width,),
    }
    inputs = width
    for i, size in enumerate([*hidden, 2 * dim]):
        shapes[f"{PREFIX}net.{2 * i}.weight"] = (size, inputs)
        shapes[f"{PREFIX}net.{2 * i}.bias"] = (size,)
        inputs = size
    return shapes


@dataclass(frozen=True, eq=False)
class Belief:
    """What a probe says about the task.

    Attributes:
        descriptor: The belief's mean, in descriptor units (what the mapping reads).
        std: Its standard deviation per feature, in descriptor units.
        task: The mean as feature values (``TaskSpace.from_descriptor``).
        steps: The env steps whose transitions it reads: the probe's (an
            ``InferringAgent``'s belief reads the latest of the steps it acted).
    """

    descriptor: np.ndarray
    std: np.ndarray
    task: dict[str, float]
    steps: int

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "descriptor": [float(v) for v in self.descriptor],
            "descriptor_std": [float(v) for v in self.std],
            "probe_steps": self.steps,
        }


@dataclass(frozen=True)
class TaskInference:
    """A trained task encoder, as a checkpoint keeps it.

    Attributes:
        hidden: Hidden layer sizes of the encoder's MLP (ReLU).
        probe_steps: The probe length it was trained and validated for (the longest it
            saw); :meth:`belief` accepts from :attr:`min_steps` up.
        min_steps: The shortest probe it was trained on: shorter ones are refused.
        noise: The probe's action noise (:func:`run_probe`).
        tensors: Encoder weights (``net.0.weight``, ...) and the input normalisation
            (``input_mean``, ``input_std``).
        report: Validation: per feature its RMSE in descriptor units, R^2, and whether it
            counts as identified (:data:`IDENTIFIED`); the tasks and probes it used.
    """

    hidden: tuple[int, ...]
    probe_steps: int
    min_steps: int
    noise: float
    tensors: dict[str, torch.Tensor]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.tensors["input_mean"].numel())

    @property
    def dim(self) -> int:
        return int(self.tensors[f"net.{2 * len(self.hidden)}.bias"].numel()) // 2

    def encoder(self) -> TaskEncoder:
        net = TaskEncoder(self.width, self.dim, self.hidden)
        net.net.load_state_dict(
            {k[len("net.") :]: v for k, v in self.tensors.items() if k.startswith("net.")}
        )
        net.eval()
        return net

    def normalise(self, transitions: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(transitions, dtype=np.float32))
        return (x - self.tensors["input_mean"]) / self.tensors["input_std"]

    def belief(self, transitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The belief's mean and std over the descriptor, from one probe's transitions
        ``(steps, width)``.

        Raises:
            ConfigError: a probe shorter than :attr:`min_steps`, or of another width.
            FamilyError: transitions unlike any of the training probes' (another family's
                env, or one far outside the family's tasks).
        """
        transitions = np.asarray(transitions, dtype=np.float32)
        if transitions.ndim != 2 or transitions.shape[1] != self.width:
            raise ConfigError(
                f"a probe's transitions must be (steps, {self.width}), got "
                f"{list(transitions.shape)}"
            )
        steps = len(transitions)
        if steps < self.min_steps:
            raise ConfigError(
                f"a probe of {steps} steps is too short for this inference model: it was "
                f"trained on probes of {self.min_steps} to {self.probe_steps} steps; probe "
                f"for at least {self.min_steps}"
            )
        x = self.normalise(transitions)
        if not bool(torch.isfinite(x).all()):
            raise FamilyError("the probe's transitions are not all finite")
        far = x.abs().mean(0)
        if float(far.max()) > OUTLIER:
            raise FamilyError(
                f"the probe's transitions are unlike this family's: transition feature "
                f"{int(far.argmax())} lies {float(far.max()):.0f} training standard deviations "
                "from the training probes' on average; probe an env of the mapping's family "
                "(its tasks near the bounds the mapping was trained on)"
            )
        with torch.no_grad():
            mean, std = self.encoder()(x[None])
        return mean[0].numpy(), std[0].numpy()

    def identified(self) -> dict[str, bool]:
        """Per feature, whether the validation probes identified it."""
        return {k: bool(v["identified"]) for k, v in self.report.get("features", {}).items()}

    # ------------------------------------------------------------- files
    def to_json(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "probe_steps": self.probe_steps,
            "min_steps": self.min_steps,
            "noise": self.noise,
            "report": self.report,
        }

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        return {PREFIX + k: v for k, v in self.tensors.items()}

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
    ) -> TaskInference:
        """From checked metadata and the checkpoint's tensors (those with :data:`PREFIX`)."""
        return cls(
            hidden=tuple(int(h) for h in data["hidden"]),
            probe_steps=int(data["probe_steps"]),
            min_steps=int(data["min_steps"]),
            noise=float(data["noise"]),
            tensors={k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)},
            report=dict(data.get("report") or {}),
        )
