"""NaN, infinities and degenerate distributions: detected, reported, and never kept.

:class:`Divergence` is raised by the mapping's own training (every phase), which then keeps
the best mapping so far. :class:`DivergenceGuard` watches an SB3 fine-tune: when an update
leaves a non-finite parameter or a collapsed or exploding standard deviation, it puts the
last usable policy back at once, warns, and stops the run.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch.nn.utils import parameters_to_vector, vector_to_parameters

logger = logging.getLogger(__name__)


LOG_STD_RANGE = (-20.0, 20.0)
"""Log standard deviations of a Gaussian policy outside this range count as divergence: the
distribution has collapsed to a point (below) or spread past any action range (above)."""


def degenerate_output(mean: torch.Tensor, log_std: torch.Tensor | None) -> str | None:
    """Why a policy's action means (or logits) and log standard deviations are unusable,
    or ``None`` when they are fine."""
    if not torch.isfinite(mean).all():
        return "a non-finite action mean or logit"
    if log_std is not None:
        if not torch.isfinite(log_std).all():
            return "a non-finite log standard deviation"
        low, high = LOG_STD_RANGE
        if (log_std < low).any() or (log_std > high).any():
            return (
                f"a log standard deviation outside [{low:g}, {high:g}] "
                f"(from {float(log_std.min()):.3g} to {float(log_std.max()):.3g})"
            )
    return None


def degenerate_policy(policy: torch.nn.Module) -> str | None:
    """Why an SB3 policy's parameters are unusable (non-finite, or a Gaussian's log standard
    deviation outside :data:`LOG_STD_RANGE`), or ``None``."""
    vector = parameters_to_vector(policy.parameters())
    if not torch.isfinite(vector).all():
        return "a non-finite policy parameter"
    log_std = getattr(policy, "log_std", None)
    if isinstance(log_std, torch.Tensor):
        return degenerate_output(log_std.new_zeros(1), log_std.detach())
    return None


class Divergence(FloatingPointError):
    """Training produced NaN or infinite values; ``env_steps`` were taken until then."""

    def __init__(self, message: str, env_steps: int = 0) -> None:
        super().__init__(message)
        self.env_steps = env_steps


class DivergenceWarning(RuntimeWarning):
    """A fine-tune diverged; the last finite policy was put back."""


class DivergenceGuard(BaseCallback):
    """An SB3 callback: a policy that an optimizer step leaves with a NaN or infinite
    parameter, or with a Gaussian's log standard deviation outside :data:`LOG_STD_RANGE`,
    is replaced at once by the last usable one (the policy at the start of the rollout),
    with a :class:`DivergenceWarning`, and training stops after that update.

    It checks after every optimizer step (a hook on the policy's optimizer), so the next
    minibatch never sees the bad parameters. ``diverged`` tells afterwards whether it
    happened. Example::

        guard = DivergenceGuard()
        model.learn(5_000, callback=guard)
    """

    def __init__(self) -> None:
        super().__init__()
        self.diverged = False
        self._good: torch.Tensor | None = None
        self._hooks: list[Any] = []

    def _vector(self) -> torch.Tensor:
        return parameters_to_vector(self.model.policy.parameters()).detach().clone()

    def _keep_if_finite(self) -> None:
        if degenerate_policy(self.model.policy) is None:
            self._good = self._vector()

    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer, *_: Any) -> None:
        problem = degenerate_policy(self.model.policy)
        if problem is None:
            return
        if self._good is not None:
            with torch.no_grad():
                vector_to_parameters(self._good, self.model.policy.parameters())
        optimizer.state.clear()  # Adam's moments hold the non-finite values too
        if not self.diverged:
            self.diverged = True
            warnings.warn(
                f"the fine-tune diverged ({problem} after {self.model.num_timesteps} env "
                "steps); the last usable policy was put back and training stopped",
                DivergenceWarning,
                stacklevel=2,
            )

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        """PPO's and A2C's one optimizer, or SAC's and TD3's actor and critic ones."""
        policy = self.model.policy
        if hasattr(policy, "optimizer"):
            return [policy.optimizer]
        return [policy.actor.optimizer, policy.critic.optimizer]

    def _on_training_start(self) -> None:
        self._keep_if_finite()
        self._hooks = [
            optimizer.register_step_post_hook(self._after_optimizer_step)
            for optimizer in self._optimizers()
        ]

    def _on_rollout_start(self) -> None:
        if not self.diverged:
            self._keep_if_finite()

    def _on_step(self) -> bool:
        return not self.diverged

    def _on_training_end(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
