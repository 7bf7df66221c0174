"""What every objective is to the trainer: a phase, run within a budget of units.

A phase trains the mapping in place, one unit at a time (a round of supervised steps, an
iteration of rollouts and updates), and after each unit hands control back to the trainer
through ``after_unit``: the trainer scores validation tasks there when the phase asks for
it (early stopping keeps the best network), saves the run's state, and lets a test stop
the run. A phase counts the env steps it takes, and saves and restores everything it holds
beside the mapping, so that a resumed run goes on exactly where it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from meta_rl.envs import Family, Task
from meta_rl.infra.divergence import Divergence
from meta_rl.mapping.critic import TaskCritic
from meta_rl.mapping.network import MappingNetwork
from meta_rl.mapping.policy import PolicySpec

if TYPE_CHECKING:
    from meta_rl.training.config import TrainConfig
    from meta_rl.training.experts import Expert
    from meta_rl.training.recipes import Recipe

AfterUnit = Callable[[int, dict[str, Any]], None]
"""Called by a phase after each unit with (unit number from 1, statistics of the unit)."""


@dataclass(frozen=True)
class PhaseInfo:
    """What the trainer, the checkpoint and the command line know of a phase.

    Attributes:
        name: The objective's name (``"distill"``).
        action_kinds: The action kinds it serves (``"box"``, ``"discrete"``).
        needs_experts: Whether it learns from per-task experts (they are trained first).
        clamps: Whether a mapping whose last phase it is predicts for descriptors clamped
            to its training region (see ``TrainedMapping.predict``).
        draws_tasks: Whether it draws its own, longer list of training tasks (an
            off-policy phase trains no expert per task, so more tasks cost nothing).
        summary: One line for help texts.
    """

    name: str
    action_kinds: frozenset[str]
    needs_experts: bool
    clamps: bool
    draws_tasks: bool
    summary: str


@dataclass(frozen=True)
class PhaseContext:
    """What a phase trains and with what: the run's settings and shared objects."""

    config: TrainConfig
    recipe: Recipe
    family: Family
    spec: PolicySpec
    network: MappingNetwork
    tasks: list[Task]
    """The split's training tasks."""
    descriptors: torch.Tensor
    """Their descriptors, row by row."""
    experts: list[Expert]
    """One per training task, for the phases that need experts; else empty."""


class Phase(ABC):
    """One objective of the mapping, run by the trainer (see the module's docstring).

    Attributes:
        env_steps: Env steps this phase has taken since it was built (validation episodes
            are the trainer's and not counted here).
        env_steps_before: The phase's env steps before an interruption (a resumed run).
    """

    info: ClassVar[PhaseInfo]
    unit: ClassVar[str] = "it"
    """The unit's name on progress bars."""

    def __init__(self, context: PhaseContext) -> None:
        self.context = context
        self.env_steps = 0
        self.env_steps_before = 0

    @property
    @abstractmethod
    def total(self) -> int:
        """Units in the phase's budget."""

    @property
    def eval_every(self) -> int:
        """Units between validation scores (the last unit is always scored)."""
        return 1

    def validates(self, unit: int) -> bool:
        """Whether the trainer scores validation tasks after ``unit`` (early stopping)."""
        return unit % self.eval_every == 0 or unit == self.total

    @property
    def drawn_tasks(self) -> list[Task] | None:
        """The training tasks the phase drew beyond the split's (recorded in the
        checkpoint), or ``None``."""
        return None

    def critic(self) -> TaskCritic | None:
        """The task-conditioned critic the phase trains beside the mapping, as it is now
        (the checkpoint keeps the one of the best validation round), or ``None``."""
        return None

    @abstractmethod
    def run(self, start: int, after_unit: AfterUnit) -> None:
        """Train units ``start + 1`` to :attr:`total`, calling ``after_unit`` after each.

        Raises:
            Divergence: a prediction, a loss or a gradient became NaN or infinite;
                :attr:`env_steps` counts the steps taken until then.
        """

    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything the phase holds beside the mapping, as named tensors."""

    @abstractmethod
    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what :meth:`state_tensors` saved (the mapping is restored beside it)."""


OnIteration = Callable[[int, int, dict[str, Any]], None]
"""Called by an iterative learner after each iteration with (iteration, env steps of this
call so far, statistics)."""


class IterativePhase(Phase):
    """A phase of rollout-and-update iterations (``rl``, ``td3``, ``sacd``): its settings
    (:attr:`settings`) hold ``iterations`` and ``eval_every``, and its history records the
    iteration and the phase's env steps (``<name>_env_steps``) at each validation."""

    settings: Any

    @property
    def total(self) -> int:
        return self.settings.iterations

    @property
    def eval_every(self) -> int:
        return self.settings.eval_every

    @abstractmethod
    def iterate(self, start: int, on_iteration: OnIteration) -> None:
        """Run the learner's iterations ``start + 1`` on, calling ``on_iteration`` after
        each (the learner raises ``Divergence`` with the env steps it took)."""

    def run(self, start: int, after_unit: AfterUnit) -> None:
        key = f"{self.info.name}_env_steps"

        def on_iteration(iteration: int, steps: int, stats: dict[str, Any]) -> None:
            self.env_steps = steps
            total = self.env_steps_before + steps
            after_unit(iteration, {**stats, "iteration": iteration, key: total})

        try:
            self.iterate(start, on_iteration)
        except Divergence as err:
            self.env_steps = err.env_steps
            raise
