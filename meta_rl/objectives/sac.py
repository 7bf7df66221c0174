"""The ``sac`` objective: soft actor-critic through the mapping network (Box actions).

``td3`` (:mod:`meta_rl.objectives.td3`) trains the mapping as TD3's deterministic actor
and explores with a fixed Gaussian noise. This objective trains it as SAC's actor
(Haarnoja et al. 2018) instead: each predicted policy is SB3's PPO ``MlpPolicy`` as it acts
when sampled, a Gaussian around its action mean with its own ``log_std`` (both predicted
by the mapping), clipped to the task's bounds. Its entropy is rewarded with a temperature
``alpha`` tuned so that the policies' mean entropy per action dimension is
``entropy_per_dim``; the twin critic ``Q(s, a, d)`` is shared by every task as in ``td3``:

* target: ``r + gamma * (min Q_target(s', a') - alpha log pi(a'|s'))``, ``a'`` drawn from
  the current predicted policy of the transition's task;
* actor (the mapping): ``alpha log pi(a|s) - min Q(s, a)`` with ``a = mu + sigma * eps``
  (reparameterised), through the predicted parameters;
* temperature: ``log alpha`` moves the mean entropy towards its target.

``log pi`` is the Gaussian's density before the clip, and the entropy is measured in units
of each task's action half-range, so one target suits every task. The mean is pulled back
inside the bounds by the same penalty as ``td3``'s, since the clip passes no gradient. A
deterministic rollout of the result (``mu`` clipped) is what the benchmarks score, and a
PPO fine-tune starts from the learned ``log_std``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from meta_rl.errors import ConfigError
from meta_rl.infra.checks import check_counts, check_reals
from meta_rl.objectives.off_policy import (
    OffPolicyConfig,
    OffPolicyPhase,
    TunedTemperature,
    polyak,
)
from meta_rl.objectives.phase import PhaseInfo
from meta_rl.objectives.td3 import TwinCritic, task_bounds

__all__ = ["SACConfig", "SACLearner", "SACPhase"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True, kw_only=True)
class SACConfig(OffPolicyConfig):
    """Settings of the ``sac`` objective (the shared ones: :class:`OffPolicyConfig`).

    Attributes:
        init_alpha: Starting entropy temperature (the rewards' scale sets a good one;
            it is tuned from there).
        alpha_lr: Adam learning rate of ``log alpha``.
        entropy_per_dim: The mean entropy per action dimension the temperature steers the
            policies to, with actions in units of the task's half-range: SAC's usual
            ``-dim(A)`` in all is -1 per dimension (a standard deviation of about 0.1 of
            the half-range).
        policy_delay: Critic updates per actor and temperature update (SAC's 1).
        bound_coef: Weight of the penalty on an action mean beyond the task's bounds.
    """

    NAME: ClassVar[str] = "sac"

    init_alpha: float = 0.01
    alpha_lr: float = 3e-4
    entropy_per_dim: float = -1.0
    policy_delay: int = 1
    bound_coef: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_counts(self, "sac", ("policy_delay",))
        check_reals(self, "sac", ("init_alpha", "alpha_lr"), positive=True)
        check_reals(self, "sac", ("bound_coef",), positive=False)
        if not math.isfinite(self.entropy_per_dim):
            raise ConfigError(f"sac.entropy_per_dim must be finite, got {self.entropy_per_dim}")


class SACLearner(TunedTemperature):
    """SAC with the mapping as its actor, across training tasks (Box actions; arguments
    as :class:`OffPolicyLearner`'s, with a :class:`SACConfig`)."""

    objective = "sac"
    action_kind = "box"
    instead = "sacd"
    config: SACConfig

    def _setup(self) -> None:
        super()._setup()
        self.low, self.high = task_bounds(self.family, self.tasks)
        self.half = (self.high - self.low) / 2
        self.rows = torch.cat([self.spec.actor_rows, self.spec.log_std_rows])

    @property
    def _rollout_rows(self) -> torch.Tensor:
        return self.rows

    def _make_critic(self, descriptor_dim: int) -> nn.Module:
        arch = self.spec.arch
        return TwinCritic(arch.obs_dim, arch.action_dim, descriptor_dim, self.config.critic_hidden)

    # --------------------------------------------------------------- policies
    def _gaussian(
        self, params: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Action means ``(B, N, A)`` and log standard deviations ``(B, 1, A)`` of the
        policies whose parameters at ``self.rows`` are ``params`` (``(B, len(rows))``)."""
        n_actor = len(self.spec.actor_rows)
        mean = self.spec.action_mean(params[:, :n_actor], obs)
        return mean, params[:, None, n_actor:]

    def _sample(
        self, mean: torch.Tensor, log_std: torch.Tensor, half: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised draw (before the clip) and its log-density per state, with
        the actions in units of ``half``."""
        eps = torch.randn(mean.shape, generator=self.generator)
        action = mean + log_std.exp() * eps
        log_std_units = log_std - torch.log(half)
        log_p = (-0.5 * eps**2 - log_std_units - _HALF_LOG_2PI).sum(-1)
        return action, log_p

    def _explore(
        self, actor: torch.Tensor, obs: torch.Tensor, chosen: torch.Tensor
    ) -> tuple[torch.Tensor, np.ndarray]:
        """A draw from each task's predicted Gaussian, clipped to the task's bounds."""
        mean, log_std = self._gaussian(actor, obs.unsqueeze(1))
        half = self.half[chosen, None]
        action, _ = self._sample(mean, log_std, half)
        action = torch.clamp(action[:, 0], self.low[chosen], self.high[chosen])
        return action, action.numpy()

    def _predict(self, desc: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._gaussian(self.network(desc, self.rows), obs)

    @torch.no_grad()
    def _target(
        self, batch: dict[str, torch.Tensor], desc: torch.Tensor, states_desc: torch.Tensor
    ) -> torch.Tensor:
        """The critics' regression target: the reward plus, unless the episode terminated,
        the discounted soft value of the next state under the current predicted policy."""
        task = batch["task"]
        low, high, half = self.low[task, None], self.high[task, None], self.half[task, None]
        mean, log_std = self._predict(desc, batch["next_obs"])
        action, log_p = self._sample(mean, log_std, half)
        next_action = torch.clamp(action, low, high)
        q1_next, q2_next = self.critic_target(batch["next_obs"], next_action, states_desc)
        soft = torch.min(q1_next, q2_next) - self.log_alpha.exp() * log_p
        return batch["rewards"] + self.config.gamma * (1 - batch["terminated"]) * soft

    def _update(self, iteration: int) -> dict[str, float]:
        """SAC's gradient steps for one rollout: the critics and their target every step,
        the actor (the mapping) and the temperature every ``policy_delay`` steps once the
        warm-up is over."""
        config = self.config
        stats: dict[str, float] = {}
        n_updates = round(config.updates_per_step * self._n_chosen * config.n_steps)
        action_dim = self.spec.arch.action_dim
        for _ in range(n_updates):
            batch, desc, states_desc = self._batch()
            task = batch["task"]
            low, high, half = self.low[task, None], self.high[task, None], self.half[task, None]
            target = self._target(batch, desc, states_desc)
            q1, q2 = self.critic(batch["obs"], batch["actions"], states_desc)
            critic_loss = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
            self._step_critic(critic_loss, iteration)
            stats["critic_loss"] = float(critic_loss.detach())
            if iteration > config.warmup_iterations and not self.updates % config.policy_delay:
                alpha = self.log_alpha.detach().exp()
                mean, log_std = self._predict(desc, batch["obs"])
                action, log_p = self._sample(mean, log_std, half)
                inside = torch.maximum(torch.minimum(action, high), low)
                q = torch.min(*self.critic(batch["obs"], inside, states_desc))
                centre = torch.maximum(torch.minimum(mean, high), low)
                beyond = ((mean - centre) / half) ** 2  # SB3 would clip it: pull it back in
                loss = (alpha * log_p - q).mean() + config.bound_coef * beyond.sum(-1).mean()
                self._step_actor(loss, iteration)
                entropy = -log_p.detach().mean() / action_dim
                self._step_temperature(entropy, config.entropy_per_dim, iteration)
                stats.update(entropy=float(entropy), alpha=float(alpha), q=float(q.detach().mean()))
            polyak(self.critic_target, self.critic, config.tau)
        return stats


class SACPhase(OffPolicyPhase):
    """``sac``: soft actor-critic through the mapping (Box actions), no experts."""

    info = PhaseInfo(
        name="sac",
        action_kinds=frozenset({"box"}),
        needs_experts=False,
        clamps=False,
        draws_tasks=True,
        summary="SAC through the mapping, no experts (Box actions)",
    )
    learner_class = SACLearner
