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

    **Observation** ``Box(8)``, **action** (``Discrete(4)``, or ``Box(2)`` with
    ``continuous=True``) and **reward** as LunarLander-v3; truncated at 1000 steps.
    The engines' impulses are scaled by ``power / default power`` in this instance only:
    Gymnasium keeps them in module constants, which this family never writes, so two
    instances with different tasks never affect each other. Wind is on when
    ``wind_power`` or ``turbulence_power`` is above 0.

    **Task features**

    ================= ======= ============= ======= ======
    name              default bounds        unit    scale
    ================= ======= ============= ======= ======
    gravity           -10     [-11.5, -6]   m/s^2   linear
    main_engine_power 13      [10, 18]              log
    side_engine_power 0.6     [0.4, 1.0]            log
    wind_power        0       [0, 20]               linear
    turbulence_power  0       [0, 2]                linear
    ================= ======= ============= ======= ======

    Why these bounds: Gymnasium recommends gravity in (-12, 0) and wind up to 20; the main
    engine at 10 still out-lifts gravity at -11.5, and hover throttle, braking distance and
    steering response all change across the space.

    Gravity changes apply to the running world at once; the rest at once too.
    **Version history**: v0, first release.
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
