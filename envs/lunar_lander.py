"""The LunarLander family: gravity, engine powers, wind and turbulence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from gymnasium.envs.box2d import lunar_lander as _ll

from .family import TaskEnv
from .task_space import Feature, Task, TaskSpace

TASK_SPACE = TaskSpace(
    [
        Feature(name="gravity", default=-10.0, low=-11.5, high=-6.0, unit="m/s^2"),
        Feature(
            name="main_engine_power",
            default=_ll.MAIN_ENGINE_POWER,
            low=10.0,
            high=18.0,
            scale="log",
            doc="impulse of the main engine at full throttle",
        ),
        Feature(
            name="side_engine_power",
            default=_ll.SIDE_ENGINE_POWER,
            low=0.4,
            high=1.0,
            scale="log",
            doc="impulse of a side engine at full throttle",
        ),
        Feature(
            name="wind_power",
            default=0.0,
            low=0.0,
            high=20.0,
            doc="largest linear wind force (0 disables wind)",
        ),
        Feature(
            name="turbulence_power",
            default=0.0,
            low=0.0,
            high=2.0,
            doc="largest rotational wind torque",
        ),
    ]
)


class _ScaledImpulses:
    """Stands in for the lander body during one step and scales the engines' impulses.

    Gymnasium's step applies the main engine's impulse (if it fires) before the side
    engine's (if it fires); ``scales`` lists the factors in that order. Everything else
    passes through to the body.
    """

    def __init__(self, body: Any, scales: list[float]):
        self._body = body
        self._scales = scales

    def ApplyLinearImpulse(self, impulse: Any, point: Any, wake: bool) -> None:
        k = self._scales.pop(0)
        self._body.ApplyLinearImpulse((impulse[0] * k, impulse[1] * k), point, wake)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)

    def __eq__(self, other: object) -> bool:
        return self._body == other

    def __hash__(self) -> int:
        return hash(self._body)


class LunarLanderFamilyEnv(TaskEnv, _ll.LunarLander):
    """Land on the pad, for a task of gravity, engine powers, wind and turbulence.

    ## Description

    Gymnasium's `LunarLander-v3`, a lander that fires its main and side engines to touch
    down gently on a pad between two flags, with gravity, the engines' powers, the wind and
    the turbulence taken from the task. The engines' impulses are scaled by `power /
    default power` in this instance only: Gymnasium keeps the powers in module constants,
    which this family never writes, so instances with different tasks never affect each
    other. Wind blows when `wind_power` or `turbulence_power` is above 0. At the default
    task (no wind) the dynamics and rewards are `LunarLander-v3`'s.

    ## Action Space

    `Discrete(4)` (nothing, left engine, main engine, right engine), or with
    `continuous=True` `Box(-1, 1, (2,), float32)` (main and lateral throttles), as
    `LunarLander-v3`.

    ## Observation Space

    `Box(8,)` float32, as `LunarLander-v3`: position, linear velocity, angle, angular
    velocity, and whether each leg touches the ground.

    ## Rewards

    As `LunarLander-v3`: shaping that grows as the lander nears the pad, slows down and
    levels out, +10 for each leg on the ground, -0.3 per frame of main engine and -0.03 per
    frame of side engine; -100 for a crash or for leaving the screen, +100 for coming to
    rest.

    ## Starting State

    The lander starts at the top centre with a random push, over terrain drawn at each
    reset, as in `LunarLander-v3`.

    ## Episode End

    Terminated when the lander crashes, leaves the screen sideways (`|x| >= 1`) or comes to
    rest; truncated after 1000 steps (the registered time limit).

    ## Arguments

    - `task`: feature values (missing ones take their defaults); `extrapolate=True`
      accepts values outside the bounds.
    - `continuous`: as `LunarLander-v3` (`meta_rl/LunarLanderContinuous-v0` sets it).
    - `render_mode`: as `LunarLander-v3`.
    - `gravity`, `wind_power`, `turbulence_power`: refused (`ValueError`); they are task
      features.
    - `enable_wind`: refused (`ValueError`); wind follows the task (on when `wind_power`
      or `turbulence_power` is above 0).

    ```python
    >>> import gymnasium as gym
    >>> import meta_rl.envs
    >>> env = gym.make("meta_rl/LunarLander-v0", task={"gravity": -8.0, "wind_power": 5.0})
    ```

    ## Task features

    Gravity changes apply to the running world at once, the other features at once too.
    The bounds keep gravity within Gymnasium's `(-12, 0)` and the wind within its
    recommended `[0, 20]` and turbulence within `[0, 2]`; hover throttle, braking distance
    and steering response change across the space.

    ## Version History

    * v0: first release. Gymnasium keywords the family cannot honour are refused.
    """

    task_space = TASK_SPACE
    refused_kwargs: ClassVar[Mapping[str, str]] = {
        "enable_wind": "wind follows the task: it blows when the task's wind_power or "
        "turbulence_power is above 0 (pass task={'wind_power': ...})",
    }

    def _apply_task(self, task: Task) -> None:
        self.gravity = task["gravity"]
        self.wind_power = task["wind_power"]
        self.turbulence_power = task["turbulence_power"]
        self.enable_wind = task["wind_power"] > 0 or task["turbulence_power"] > 0
        self._main_scale = task["main_engine_power"] / _ll.MAIN_ENGINE_POWER
        self._side_scale = task["side_engine_power"] / _ll.SIDE_ENGINE_POWER
        world = getattr(self, "world", None)
        if world is not None:
            world.gravity = (0.0, self.gravity)

    def _engines_firing(self, action: Any) -> tuple[bool, bool]:
        if self.continuous:
            a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
            return bool(a[0] > 0.0), bool(abs(a[1]) > 0.5)
        return bool(action == 2), bool(action in (1, 3))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.lander is None:
            raise RuntimeError("call reset() before step()")
        main, side = self._engines_firing(action)
        scales = [self._main_scale] * main + [self._side_scale] * side
        body = self.lander
        self.lander = _ScaledImpulses(body, scales)
        try:
            return super().step(action)
        finally:
            self.lander = body
