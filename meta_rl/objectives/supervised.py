"""The supervised objectives: the mapping learns from per-task experts.

* ``params``: squared distance between predicted and expert parameters. Meaningful only
  because the experts are aligned (fine-tuned from one base).
* ``distill``: match the experts' *behaviour*, action distributions and values, on states
  that the experts and the predicted policies visit (relabelled by the experts, as in
  DAgger). It ignores weight-space symmetries altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from meta_rl.evaluation import collect_states
from meta_rl.infra.divergence import Divergence
from meta_rl.infra.files import load_optimizer, optimizer_tensors
from meta_rl.mapping.policy import PolicyOutput, PolicySpec
from meta_rl.objectives.phase import AfterUnit, Phase, PhaseContext, PhaseInfo


def params_loss(predicted: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between predicted and expert parameters, ``(B, P)`` each."""
    return ((predicted - expert) ** 2).sum(-1).mean() / predicted.shape[-1]


def action_kl(expert: PolicyOutput, predicted: PolicyOutput, discrete: bool) -> torch.Tensor:
    """``KL(expert || predicted)`` of the action distributions, per state."""
    if discrete:
        log_pe = torch.log_softmax(expert.mean, -1)
        log_pp = torch.log_softmax(predicted.mean, -1)
        return (log_pe.exp() * (log_pe - log_pp)).sum(-1)
    assert expert.log_std is not None and predicted.log_std is not None
    var_e, var_p = torch.exp(2 * expert.log_std), torch.exp(2 * predicted.log_std)
    kl = (
        predicted.log_std
        - expert.log_std
        + (var_e + (expert.mean - predicted.mean) ** 2) / (2 * var_p)
        - 0.5
    )
    return kl.sum(-1)


@dataclass
class DistillData:
    """States per training task, with the task's expert outputs on them.

    Attributes:
        obs: One ``(N_i, obs_dim)`` tensor per task.
        targets: The expert's outputs on those states, per task.
        value_scale: Per-task scale of the expert's values, so every task's value error
            weighs alike.
    """

    obs: list[torch.Tensor] = field(default_factory=list)
    targets: list[PolicyOutput] = field(default_factory=list)
    value_scale: torch.Tensor | None = None

    def add(self, spec: PolicySpec, experts: torch.Tensor, states: list[np.ndarray]) -> None:
        """Add states (one array per task), relabelled by each task's expert."""
        with torch.no_grad():
            for i, s in enumerate(states):
                obs = torch.as_tensor(s, dtype=torch.float32)
                out = spec.forward(experts[i], obs)
                if len(self.obs) <= i:
                    self.obs.append(obs)
                    self.targets.append(out)
                else:
                    old = self.targets[i]
                    self.obs[i] = torch.cat([self.obs[i], obs])
                    self.targets[i] = PolicyOutput(
                        mean=torch.cat([old.mean, out.mean]),
                        log_std=out.log_std,
                        value=torch.cat([old.value, out.value]),
                    )
            self.value_scale = torch.stack([t.value.std() + 1.0 for t in self.targets])

    def __len__(self) -> int:
        return sum(len(o) for o in self.obs)

    def to_tensors(self, prefix: str = "data.") -> dict[str, torch.Tensor]:
        """Everything as named tensors (for a resumable run's saved state)."""
        out: dict[str, torch.Tensor] = {}
        for i, (o, t) in enumerate(zip(self.obs, self.targets, strict=True)):
            out.update({f"{prefix}obs.{i}": o, f"{prefix}mean.{i}": t.mean})
            out[f"{prefix}value.{i}"] = t.value
            if t.log_std is not None:
                out[f"{prefix}log_std.{i}"] = t.log_std
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str = "data.") -> DistillData:
        """The inverse of :meth:`to_tensors`: the same states and labels, bit for bit."""
        data = cls()
        i = 0
        while f"{prefix}obs.{i}" in tensors:
            data.obs.append(tensors[f"{prefix}obs.{i}"])
            data.targets.append(
                PolicyOutput(
                    mean=tensors[f"{prefix}mean.{i}"],
                    log_std=tensors.get(f"{prefix}log_std.{i}"),
                    value=tensors[f"{prefix}value.{i}"],
                )
            )
            i += 1
        if data.targets:
            data.value_scale = torch.stack([t.value.std() + 1.0 for t in data.targets])
        return data

    def batch(self, n_states: int, generator: torch.Generator) -> tuple[torch.Tensor, PolicyOutput]:
        """``n_states`` random states per task: obs ``(B, n, obs_dim)`` and targets."""
        obs, means, values = [], [], []
        log_std = []
        for o, t in zip(self.obs, self.targets, strict=True):
            idx = torch.randint(len(o), (n_states,), generator=generator)
            obs.append(o[idx])
            means.append(t.mean[idx])
            values.append(t.value[idx])
            if t.log_std is not None:
                log_std.append(t.log_std.unsqueeze(0))
        return torch.stack(obs), PolicyOutput(
            mean=torch.stack(means),
            log_std=torch.stack(log_std) if log_std else None,
            value=torch.stack(values),
        )


def distill_loss(
    spec: PolicySpec,
    predicted: torch.Tensor,
    obs: torch.Tensor,
    targets: PolicyOutput,
    value_scale: torch.Tensor,
    value_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Behaviour-matching loss of predicted parameters ``(B, P)`` on states ``(B, N, obs)``."""
    out = spec.forward(predicted, obs)
    kl = action_kl(targets, out, spec.arch.action_kind == "discrete").mean()
    value = (((out.value - targets.value) / value_scale[:, None]) ** 2).mean()
    loss = kl + value_coef * value
    return loss, {"kl": float(kl.detach()), "value": float(value.detach())}


class SupervisedPhase(Phase):
    """Rounds of ``steps_per_round`` Adam steps of the mapping on a loss against the
    experts (:meth:`loss`); validation after every round."""

    unit: ClassVar[str] = "round"

    def __init__(self, context: PhaseContext) -> None:
        super().__init__(context)
        config = context.config
        self.expert_params = torch.stack([e.params for e in context.experts])
        self.optimizer = torch.optim.Adam(context.network.parameters(), lr=config.lr)

    @property
    def total(self) -> int:
        return self.context.config.rounds

    def loss(self, predicted: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of predicted parameters ``(tasks, P)`` and its statistics."""
        raise NotImplementedError

    def before_round(self, round_: int) -> None:
        """Work before round ``round_``'s gradient steps (``distill``: new states)."""

    def run(self, start: int, after_unit: AfterUnit) -> None:
        config, network = self.context.config, self.context.network
        for round_ in range(start + 1, self.total + 1):
            self.before_round(round_)
            stats: dict[str, float] = {}
            for _ in range(config.steps_per_round):
                loss, stats = self.loss(network(self.context.descriptors))
                self.optimizer.zero_grad()
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                if not (torch.isfinite(loss) and torch.isfinite(norm)):
                    raise Divergence(
                        f"{self.info.name} objective: the loss or its gradient became "
                        f"{float(loss.detach())} / {float(norm)} in round {round_}"
                    )
                self.optimizer.step()
            after_unit(round_, stats)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return optimizer_tensors(self.optimizer, "optimizer")

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        load_optimizer(self.optimizer, tensors, "optimizer")


class ParamsPhase(SupervisedPhase):
    """``params``: regression onto the experts' parameters."""

    info = PhaseInfo(
        name="params",
        action_kinds=frozenset({"box", "discrete"}),
        needs_experts=True,
        clamps=False,
        draws_tasks=False,
        summary="regression onto the experts' parameters",
    )

    def loss(self, predicted: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        loss = params_loss(predicted, self.expert_params)
        return loss, {"params": float(loss.detach())}


class DistillPhase(SupervisedPhase):
    """``distill``: behaviour matching on the experts' states, then (DAgger) before every
    later round on the states the mapping's own predictions visit, all labelled by the
    experts."""

    info = PhaseInfo(
        name="distill",
        action_kinds=frozenset({"box", "discrete"}),
        needs_experts=True,
        clamps=False,
        draws_tasks=False,
        summary="behaviour matching of the experts, with DAgger states",
    )

    def __init__(self, context: PhaseContext) -> None:
        super().__init__(context)
        self.data = DistillData()
        self.generator = torch.Generator().manual_seed(context.config.seed)

    def relabel(self, params: torch.Tensor, tasks: list, seed: int) -> None:
        """States visited by ``params`` (one row per task), labelled by the experts."""
        context = self.context
        n_states = context.config.states_per_task
        states = [
            collect_states(
                context.spec, params[i], context.family, t, n_states=n_states, seed=seed + i
            )
            for i, t in enumerate(tasks)
        ]
        self.data.add(context.spec, self.expert_params, states)
        self.env_steps += len(tasks) * n_states

    def before_round(self, round_: int) -> None:
        context, seed = self.context, self.context.config.seed
        if round_ == 1:  # the experts' own states
            self.relabel(self.expert_params, [e.task for e in context.experts], seed + 100)
        else:  # DAgger: the states the *predicted* policies visit
            with torch.no_grad():
                predicted = context.network(context.descriptors)
            self.relabel(predicted, context.tasks, seed + 1000 * (round_ - 1))

    def loss(self, predicted: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        config = self.context.config
        obs, targets = self.data.batch(config.batch_states, self.generator)
        assert self.data.value_scale is not None
        return distill_loss(
            self.context.spec, predicted, obs, targets, self.data.value_scale, config.value_coef
        )

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            **super().state_tensors(),
            **self.data.to_tensors(),
            "generator": self.generator.get_state(),
        }

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        super().restore(tensors)
        self.data = DistillData.from_tensors(tensors)
        self.generator.set_state(tensors["generator"])
