"""The ``sacd`` objective: soft actor-critic for discrete actions through the mapping network.

``td3`` (:mod:`meta_rl.objectives.td3`) gave the Box families an off-policy objective; this is its
counterpart for discrete actions (SAC-Discrete, Christodoulou 2019). Every env of a
rollout holds its own training task and samples from the categorical policy the mapping
predicts for that task; one twin critic ``Q(s, d) -> R^|A|`` reads the descriptor ``d``
beside the state and scores every action at once. With a discrete policy the expectations
over actions are sums, so the critic's target and the actor's loss need no sampled action:

* target: ``r + gamma * sum_a' pi(a'|s') (min Q_target(s', a') - alpha log pi(a'|s'))``;
* actor (the mapping): ``sum_a pi(a|s) (alpha log pi(a|s) - min Q(s, a))``, through the
  predicted parameters;
* temperature: ``alpha`` is tuned so that the policies' mean entropy is
  ``target_entropy`` times ``log |A|``.

The predicted policy is still SB3's PPO ``MlpPolicy``: its logits are the actor, and its
value head stays the base's, ready for a PPO fine-tune.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from meta_rl.errors import ConfigError
from meta_rl.infra.checks import check_reals
from meta_rl.objectives.off_policy import (
    OffPolicyConfig,
    OffPolicyPhase,
    TunedTemperature,
    mlp,
    polyak,
)
from meta_rl.objectives.phase import PhaseInfo


@dataclass(frozen=True, kw_only=True)
class SACDConfig(OffPolicyConfig):
    """Settings of the ``sacd`` objective (the shared ones: :class:`OffPolicyConfig`).

    Attributes:
        tasks_per_iteration: 8 by default, as each runs 500 steps.
        n_steps: 500 lets a CartPole or Acrobot episode run to its limit, so the buffer
            holds late states too (a cart that drifts off after 300 steps).
        gamma: 0.99: CartPole's and Acrobot's episodes last 500 steps.
        init_alpha: Starting entropy temperature.
        alpha_lr: Adam learning rate of ``log alpha``.
        target_entropy: The mean entropy ``alpha`` steers the policies to, as a fraction of
            the uniform policy's ``log |A|``.
    """

    NAME: ClassVar[str] = "sacd"

    tasks_per_iteration: int = 8
    n_steps: int = 500
    gamma: float = 0.99
    init_alpha: float = 0.01
    alpha_lr: float = 3e-4
    target_entropy: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_reals(self, "sacd", ("init_alpha", "alpha_lr"), positive=True)
        if not 0 <= self.target_entropy <= 1:
            raise ConfigError(
                f"sacd.target_entropy must be in [0, 1] (a fraction of log |A|), got "
                f"{self.target_entropy}"
            )


class DiscreteTwinCritic(nn.Module):
    """Two ``Q(s, d)`` networks with one output per action, one for every task."""

    def __init__(self, obs_dim: int, n_actions: int, descriptor_dim: int, hidden: Sequence[int]):
        super().__init__()
        width = obs_dim + descriptor_dim
        self.q1, self.q2 = mlp(width, hidden, n_actions), mlp(width, hidden, n_actions)

    def forward(
        self, obs: torch.Tensor, descriptor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, descriptor], -1)
        return self.q1(x), self.q2(x)


class SACDLearner(TunedTemperature):
    """SAC-Discrete with the mapping as its actor, across training tasks (discrete
    actions; arguments as :class:`OffPolicyLearner`'s, with a :class:`SACDConfig`)."""

    objective = "sacd"
    action_kind = "discrete"
    instead = "td3"
    config: SACDConfig

    def _setup(self) -> None:
        super()._setup()
        self.entropy_goal = self.config.target_entropy * math.log(self.spec.arch.action_dim)

    @property
    def _action_width(self) -> int:
        return 1  # the action's index

    def _make_critic(self, descriptor_dim: int) -> nn.Module:
        arch = self.spec.arch
        return DiscreteTwinCritic(
            arch.obs_dim, arch.action_dim, descriptor_dim, self.config.critic_hidden
        )

    def _explore(
        self, actor: torch.Tensor, obs: torch.Tensor, chosen: torch.Tensor
    ) -> tuple[torch.Tensor, np.ndarray]:
        """A draw from each task's predicted categorical policy."""
        probs = torch.softmax(self.spec.action_mean(actor, obs.unsqueeze(1))[:, 0], -1)
        action = torch.multinomial(probs, 1, generator=self.generator)
        return action.float(), action[:, 0].numpy()

    def _policy(self, desc: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and log-probabilities of the predicted policies' actions."""
        logits = self.spec.action_mean(self.network(desc, self.spec.actor_rows), obs)
        log_p = torch.log_softmax(logits, -1)
        return log_p.exp(), log_p

    @torch.no_grad()
    def _target(
        self, batch: dict[str, torch.Tensor], desc: torch.Tensor, states_desc: torch.Tensor
    ) -> torch.Tensor:
        """The critics' regression target: the reward plus, unless the episode terminated,
        the discounted soft value of the next state under the current predicted policy."""
        alpha = self.log_alpha.detach().exp()
        p_next, log_p_next = self._policy(desc, batch["next_obs"])
        q1_next, q2_next = self.critic_target(batch["next_obs"], states_desc)
        soft = (p_next * (torch.min(q1_next, q2_next) - alpha * log_p_next)).sum(-1)
        return batch["rewards"] + self.config.gamma * (1 - batch["terminated"]) * soft

    def _update(self, iteration: int) -> dict[str, float]:
        """SAC-Discrete's gradient steps for one rollout: the critics and their target every
        step, the actor (the mapping) and the temperature once the warm-up is over."""
        config = self.config
        stats: dict[str, float] = {}
        n_updates = round(config.updates_per_step * self._n_chosen * config.n_steps)
        for _ in range(n_updates):
            batch, desc, states_desc = self._batch()
            alpha = self.log_alpha.detach().exp()
            target = self._target(batch, desc, states_desc)
            taken = batch["actions"].long()
            q1, q2 = self.critic(batch["obs"], states_desc)
            q1, q2 = q1.gather(-1, taken).squeeze(-1), q2.gather(-1, taken).squeeze(-1)
            critic_loss = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
            self._step_critic(critic_loss, iteration)
            stats["critic_loss"] = float(critic_loss.detach())
            if iteration > config.warmup_iterations:
                p, log_p = self._policy(desc, batch["obs"])
                with torch.no_grad():
                    q = torch.min(*self.critic(batch["obs"], states_desc))
                self._step_actor((p * (alpha * log_p - q)).sum(-1).mean(), iteration)
                entropy = -(p.detach() * log_p.detach()).sum(-1).mean()
                self._step_temperature(entropy, self.entropy_goal, iteration)
                stats.update(entropy=float(entropy), alpha=float(alpha), q=float(q.mean()))
            polyak(self.critic_target, self.critic, config.tau)
        return stats


class SACDPhase(OffPolicyPhase):
    """``sacd``: discrete soft actor-critic through the mapping, no experts."""

    info = PhaseInfo(
        name="sacd",
        action_kinds=frozenset({"discrete"}),
        needs_experts=False,
        clamps=False,
        draws_tasks=True,
        summary="discrete SAC through the mapping, no experts (discrete actions)",
    )
    learner_class = SACDLearner
