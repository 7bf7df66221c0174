"""Training objectives of the mapping network.

* ``params``: the seed's loss, squared distance between predicted and expert parameters.
  Meaningful only because the experts are aligned (fine-tuned from one base).
* ``distill``: match the experts' *behaviour*, action distributions and values, on states
  that the experts and the predicted policies visit (relabelled by the experts, as in
  DAgger). It ignores weight-space symmetries altogether.
* ``rl`` (in :mod:`meta_rl.rl`): PPO through the mapping, on rollouts of the predicted
  policies; no experts at all.
* ``td3`` (in :mod:`meta_rl.td3`): TD3 with the mapping as its actor and one critic that
  reads the descriptor; no experts. Box actions only.
* ``sacd`` (in :mod:`meta_rl.sacd`): SAC-Discrete with the mapping as its actor, the
  discrete-action counterpart of ``td3``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from meta_rl.policy_spec import PolicyOutput, PolicySpec

OBJECTIVES = ("params", "distill", "rl", "td3", "sacd", "distill+rl", "params+distill")
"""Objectives of ``meta-rl train``; ``a+b`` runs ``a``, then ``b`` from its result."""


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
