"""The built-in families and their registration under ``meta_rl/<Family>-v0``."""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from . import family as _family
from . import vector as _vector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Builtin:
    name: str
    module: str
    cls: str
    max_episode_steps: int
    summary: str
    extra: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


BUILTINS = (
    _Builtin("Pendulum", "pendulum", "PendulumFamilyEnv", 200, "swing-up pendulum"),
    _Builtin("CartPole", "cartpole", "CartPoleFamilyEnv", 500, "cart-pole balance"),
    _Builtin(
        "MountainCarContinuous",
        "mountain_car",
        "MountainCarContinuousFamilyEnv",
        999,
        "under-powered car up a hill",
    ),
    _Builtin("Acrobot", "acrobot", "AcrobotFamilyEnv", 500, "two-link swing-up"),
    _Builtin(
        "LunarLander",
        "lunar_lander",
        "LunarLanderFamilyEnv",
        1000,
        "lander, discrete engines (continuous=True for Box actions)",
        extra="box2d",
    ),
    _Builtin(
        "LunarLanderContinuous",
        "lunar_lander",
        "LunarLanderFamilyEnv",
        1000,
        "lander, continuous engines",
        extra="box2d",
        kwargs={"continuous": True},
    ),
    _Builtin(
        "HalfCheetahVel",
        "half_cheetah",
        "HalfCheetahVelEnv",
        200,
        "MAML's target-velocity cheetah",
        extra="mujoco",
    ),
    _Builtin(
        "HalfCheetah",
        "half_cheetah",
        "HalfCheetahFamilyEnv",
        1000,
        "cheetah with mass and friction",
        extra="mujoco",
    ),
)

UNAVAILABLE: dict[str, str] = {}
"""Built-in families whose extra is not installed: name to the install hint."""


def register_builtin_families() -> None:
    """Register every built-in family whose dependencies are installed.

    A family whose extra is missing is still registered with Gymnasium (``gym.make`` then
    raises Gymnasium's ``DependencyNotInstalled``), and :func:`get_family` says which extra
    to install.
    """
    for b in BUILTINS:
        try:
            module = importlib.import_module(f"{__package__}.{b.module}")
        except (ImportError, gym.error.DependencyNotInstalled) as err:
            hint = f"family {b.name} needs the {b.extra} extra: pip install 'meta-rl[{b.extra}]'"
            logger.debug("%s (%s)", hint, err)
            UNAVAILABLE[b.name.lower()] = hint
            env_id = f"meta_rl/{b.name}-v0"
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=f"{__package__}.{b.module}:{b.cls}",
                    max_episode_steps=b.max_episode_steps,
                    kwargs=b.kwargs,
                )
            continue
        _family.register_family(
            b.name,
            getattr(module, b.cls),
            max_episode_steps=b.max_episode_steps,
            summary=b.summary,
            kwargs=b.kwargs,
            vector_entry_point=(
                functools.partial(_vector.FamilyVectorEnv, b.name)
                if b.name.lower() in _vector.batched_families()
                else None
            ),
        )
