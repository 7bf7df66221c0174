"""Failures that speak: the checks a training run makes of itself.

* **After the base** (:func:`check_base`): the base policy and a uniformly random one play
  the default task. A base no better than random (by :data:`WEAK_FRACTION` of the returns'
  scale) means that PPO found nothing to learn at this budget. Where the objective fine-tunes
  experts from the base (``distill``, ``params``), they would learn nothing either: the run
  stops with :class:`WeakBaseError`, which says what to try, unless
  ``TrainConfig(keep_going=True)`` (``meta-rl train --keep-going``). ``rl``, ``td3`` and
  ``sacd`` learn through the mapping from any start: the run says so and goes on.
* **At the end** (:func:`summary`): random, the base, the experts and the mapping on the
  validation tasks, side by side, with a flag where the mapping does not beat the base.

Their episodes are diagnostics: reported as ``check_env_steps`` in the training log, not
in the training's own ``env_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from meta_rl.envs import Family, Task
from meta_rl.errors import MetaRLError
from meta_rl.evaluation import ParamsPolicy, run_episodes
from meta_rl.mapping.policy import PolicySpec

WEAK_FRACTION = 0.05
"""A base is weak where its mean return is not above random play's by more than this
fraction of the larger magnitude. Not a standard error: random play's returns can spread so
widely (an unstable env) that a base at a tenth of random's cost would fall within two of
them."""


class WeakBaseError(MetaRLError):
    """The base policy is no better than random on the default task (see
    :func:`check_base`); the message says what to try."""


@dataclass(frozen=True)
class Returns:
    """Mean and standard error of a policy's returns over some episodes."""

    mean: float
    se: float

    @classmethod
    def of(cls, returns: Sequence[float]) -> Returns:
        arr = np.asarray(returns, dtype=np.float64)
        se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else 0.0
        return cls(float(arr.mean()), se)


def play(
    family: Family,
    task: Task,
    spec: PolicySpec | None,
    params: torch.Tensor | None,
    *,
    episodes: int,
    seed: int,
    lengths: list[int],
) -> list[float]:
    """Returns of ``params`` (deterministic) or, where ``params`` is ``None``, of uniformly
    random actions, on ``task``; episode lengths are appended to ``lengths``."""
    env = family.make(task=task)
    try:
        policy = None if params is None else ParamsPolicy(spec, params, env.action_space)
        return run_episodes(env, policy, episodes=episodes, seed=seed, lengths=lengths)
    finally:
        env.close()


def random_return(
    family: Family, tasks: Sequence[Task], *, episodes: int, seed: int, lengths: list[int]
) -> float:
    """Random play's mean return over ``tasks`` (``episodes`` each)."""
    per_task = [
        np.mean(play(family, t, None, None, episodes=episodes, seed=seed, lengths=lengths))
        for t in tasks
    ]
    return float(np.mean(per_task))


@dataclass(frozen=True)
class BaseCheck:
    """The base policy against random play on the default task.

    Attributes:
        random: Random play's returns.
        base: The base policy's returns.
        env_steps: Env steps the check took.
    """

    random: Returns
    base: Returns
    env_steps: int

    @property
    def margin(self) -> float:
        """:data:`WEAK_FRACTION` of the larger of the two mean returns' magnitudes."""
        return WEAK_FRACTION * max(abs(self.random.mean), abs(self.base.mean))

    @property
    def weak(self) -> bool:
        """The base's mean return is not above random play's by more than :attr:`margin`."""
        return self.base.mean - self.random.mean <= self.margin

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "weak": self.weak}


def check_base(
    family: Family, spec: PolicySpec, base: torch.Tensor, *, episodes: int, seed: int
) -> BaseCheck:
    """The base policy and random play, ``episodes`` episodes each on the default task
    (the same seeds)."""
    lengths: list[int] = []
    task: Task = {}
    random = play(family, task, None, None, episodes=episodes, seed=seed, lengths=lengths)
    played = play(family, task, spec, base, episodes=episodes, seed=seed, lengths=lengths)
    return BaseCheck(Returns.of(random), Returns.of(played), sum(lengths))


def weak_base_message(
    family: Family, check: BaseCheck, base_steps: int, objective: str, *, fatal: bool
) -> str:
    """What a weak base makes the run say: the figures, then what to try (``fatal``: the
    objective trains experts from the base, and the run stops)."""
    figures = (
        f"the base policy of {family.name} (PPO, {base_steps:,} env steps on the default "
        f"task) returns {check.base.mean:.1f}, no better than random play's "
        f"{check.random.mean:.1f} (margin {check.margin:.1f})"
    )
    if not fatal:
        return (
            f"{figures}; {objective} learns through the mapping from any start, so the run "
            "goes on, from a mapping that is no better than random yet. If it ends no "
            "better, try a denser reward or a larger budget"
        )
    return (
        f"{figures}: the experts of {objective} are fine-tuned from it and would learn "
        "nothing. Try a denser reward (reward progress, not only success), an objective "
        "without experts (td3 for Box actions, sacd or rl for discrete ones), or a larger "
        "budget (budget_scale above 1, or a recipe with more base_steps); or train anyway "
        "with keep_going=True (--keep-going on the command line)"
    )


def summary(
    *,
    random_val: float,
    base_val: float,
    mapping_val: float,
    selected_round: int,
    experts: Sequence[Any],
    margin: float,
) -> tuple[dict[str, Any], list[str]]:
    """The end-of-training summary (mean returns on the validation tasks; the experts' on
    their own training tasks) and its lines, the last a warning where the mapping does not
    beat the base by more than ``margin``."""
    data: dict[str, Any] = {
        "random_val_return": random_val,
        "base_val_return": base_val,
        "mapping_val_return": mapping_val,
        "selected_round": selected_round,
        "experts": len(experts),
    }
    lines = [
        f"validation return: random {random_val:.1f}, base {base_val:.1f}, mapping "
        f"{mapping_val:.1f} (round {selected_round})"
    ]
    if experts:
        expert_mean = float(np.mean([e.return_mean for e in experts]))
        start_mean = float(np.mean([e.base_return for e in experts]))
        data.update(expert_return=expert_mean, base_return_on_expert_tasks=start_mean)
        lines.append(
            f"{len(experts)} experts on their training tasks: {expert_mean:.1f} (the base "
            f"there: {start_mean:.1f})"
        )
    beats = mapping_val - base_val > margin and selected_round > 0
    data["mapping_beats_base"] = beats
    if not beats:
        lines.append(
            "warning: the mapping does not beat the base on the validation tasks (by more "
            f"than {margin:.1f}): it predicts about the base's policy for every task. Try "
            "another objective, a larger budget, or features that change what the policy "
            "should do"
        )
    return data, lines
