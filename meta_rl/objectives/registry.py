"""The registry of phases, and the one parser of objective strings.

An objective is one phase (``"td3"``) or several run in sequence, each from the mapping
the one before left (``"distill+rl"``). Every phase of it must serve the family's action
kind; none may appear twice.
"""

from __future__ import annotations

import gymnasium as gym

from meta_rl.envs import Family
from meta_rl.errors import ConfigError, FamilyError
from meta_rl.objectives.on_policy import RLPhase
from meta_rl.objectives.phase import Phase, PhaseInfo
from meta_rl.objectives.sac import SACPhase
from meta_rl.objectives.sacd import SACDPhase
from meta_rl.objectives.supervised import DistillPhase, ParamsPhase
from meta_rl.objectives.td3 import TD3Phase

PHASES: dict[str, type[Phase]] = {
    cls.info.name: cls
    for cls in (ParamsPhase, DistillPhase, RLPhase, TD3Phase, SACPhase, SACDPhase)
}
"""Every phase by name."""

SEPARATOR = "+"


def parse_objective(objective: str) -> tuple[type[Phase], ...]:
    """The phases of ``objective``, in the order they run.

    Raises:
        ConfigError: an empty or unknown phase, or one named twice.
    """
    if not isinstance(objective, str):
        raise ConfigError(f"objective must be a string such as 'distill+rl', got {objective!r}")
    names = objective.split(SEPARATOR)
    unknown = [n for n in names if n not in PHASES]
    if unknown:
        raise ConfigError(
            f"unknown objective {objective!r}: each phase must be one of {', '.join(PHASES)}, "
            f"joined by '{SEPARATOR}' to run them in sequence (e.g. 'distill+rl')"
        )
    if len(set(names)) < len(names):
        raise ConfigError(f"objective {objective!r} names a phase twice")
    return tuple(PHASES[n] for n in names)


def phase_infos(objective: str) -> tuple[PhaseInfo, ...]:
    """What is known of each phase of ``objective`` (see :func:`parse_objective`)."""
    return tuple(cls.info for cls in parse_objective(objective))


def action_kind(family: Family) -> str:
    """``"box"`` or ``"discrete"``: the kind of the family's actions."""
    env = family.make()
    try:
        return "box" if isinstance(env.action_space, gym.spaces.Box) else "discrete"
    finally:
        env.close()


def check_objective(objective: str, family: Family) -> None:
    """Raise unless every phase of ``objective`` serves ``family``'s action kind.

    Raises:
        ConfigError: see :func:`parse_objective`.
        FamilyError: a phase for the other action kind, naming the phases that fit.
    """
    kind = action_kind(family)
    words = {"box": "continuous (Box)", "discrete": "discrete"}
    for info in phase_infos(objective):
        if kind not in info.action_kinds:
            other = "discrete" if kind == "box" else "box"
            fitting = [p.info.name for p in PHASES.values() if kind in p.info.action_kinds]
            # the expert-free phases first: the likeliest replacements
            fitting.sort(key=lambda name: (PHASES[name].info.needs_experts, name == "rl"))
            fitting = [n for n in fitting if n != "params"]
            raise FamilyError(
                f"the {info.name} objective needs {words[other]} actions; {family.name}'s are "
                f"{words[kind]}: use {', '.join(fitting[:-1])} or {fitting[-1]}"
            )


__all__ = ["PHASES", "action_kind", "check_objective", "parse_objective", "phase_infos"]
