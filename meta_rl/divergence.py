"""NaN and infinities: detected, reported, and never kept.

:class:`Divergence` is raised by the mapping's own training (``distill``, ``params``,
``rl``), which then keeps the best mapping so far. :class:`DivergenceGuard` watches an SB3
fine-tune: when an update leaves a non-finite parameter, it puts the last finite policy
back, warns, and stops the run.
"""

from __future__ import annotations

import logging
import warnings

import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch.nn.utils import parameters_to_vector, vector_to_parameters

logger = logging.getLogger(__name__)


class Divergence(FloatingPointError):
    """Training produced NaN or infinite values; ``env_steps`` were taken until then."""

    def __init__(self, message: str, env_steps: int = 0) -> None:
        super().__init__(message)
        self.env_steps = env_steps


class DivergenceWarning(RuntimeWarning):
    """A fine-tune diverged; the last finite policy was put back."""


class DivergenceGuard(BaseCallback):
    """An SB3 callback: after every update, a policy with a NaN or infinite parameter is
    replaced by the last finite one, with a :class:`DivergenceWarning`, and training stops.

    ``diverged`` tells afterwards whether it happened. Example::

        guard = DivergenceGuard()
        model.learn(5_000, callback=guard)
    """

    def __init__(self) -> None:
        super().__init__()
        self.diverged = False
        self._good: torch.Tensor | None = None

    def _vector(self) -> torch.Tensor:
        return parameters_to_vector(self.model.policy.parameters()).detach().clone()

    def _check(self) -> bool:
        """Keep a finite policy; restore the last one if the current one is not."""
        current = self._vector()
        if torch.isfinite(current).all():
            self._good = current
            return True
        if self._good is not None:
            vector_to_parameters(self._good, self.model.policy.parameters())
        self.diverged = True
        warnings.warn(
            f"the fine-tune diverged (a non-finite policy parameter after "
            f"{self.model.num_timesteps} env steps); the last finite policy was put back and "
            "training stopped",
            DivergenceWarning,
            stacklevel=2,
        )
        return False

    def _on_training_start(self) -> None:
        self._check()

    def _on_rollout_start(self) -> None:
        self._check()  # right after an update

    def _on_step(self) -> bool:
        return not self.diverged

    def _on_training_end(self) -> None:
        if not self.diverged:
            self._check()
