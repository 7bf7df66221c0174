"""The HalfCheetah families: a target velocity (MAML's HalfCheetah-Vel) and body dynamics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from .family import TaskEnv
from .task_space import Feature, Task, TaskSpace

VEL_TASK_SPACE = TaskSpace(
    [
        Feature(
            name="target_velocity",
            default=1.0,
            low=0.0,
            high=2.0,
            unit="m/s",
            kind="reward",
            doc="forward velocity the reward asks for",
        )
    ]
)

DYNAMICS_TASK_SPACE = TaskSpace(
    [
        Feature(
            name="mass_scale",
            default=1.0,
            low=0.5,
            high=2.0,
            scale="log",
            doc="factor on every body's mass and inertia",
        ),
        Feature(
            name="friction_scale",
            default=1.0,
            low=0.5,
            high=2.0,
            scale="log",
            doc="factor on every geom's friction",
        ),
    ]
)


class HalfCheetahVelEnv(TaskEnv, HalfCheetahEnv):
    """Run at a target velocity: the HalfCheetah-Vel task of the MAML paper (Finn et al. 2017).

    **Observation** ``Box(17)`` and **action** ``Box(6)`` as HalfCheetah-v5. **Reward**:
    ``-|v - target_velocity| - 0.05 |a|^2`` with ``v`` the forward velocity. Never
    terminated; truncated at 200 steps, the MAML paper's horizon.

    **Task features**

    =============== ======= ======== ===== ======
    name            default bounds   unit  kind
    =============== ======= ======== ===== ======
    target_velocity 1.0     [0, 2]   m/s   reward
    =============== ======= ======== ===== ======

    Why these bounds: the MAML paper draws targets uniformly in [0, 2]; standing still and
    running at 2 m/s need different gaits, so one policy cannot fit all.

    Task changes take effect at once. **Version history**: v0, first release.
    """

    task_space = VEL_TASK_SPACE
    refused_kwargs: ClassVar[Mapping[str, str]] = {
        key: "this family's reward is -|v - target_velocity| - 0.05 |a|^2, which has no such weight"
        for key in ("forward_reward_weight", "ctrl_cost_weight")
    }

    def _apply_task(self, task: Task) -> None:
        self.target_velocity = task["target_velocity"]

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict]:
        forward = -abs(x_velocity - self.target_velocity)
        ctrl = -0.05 * float(np.sum(np.square(action)))
        return forward + ctrl, {"reward_forward": forward, "reward_ctrl": ctrl}


class HalfCheetahFamilyEnv(TaskEnv, HalfCheetahEnv):
    """Run forward, for a task of body mass and ground friction.

    **Observation**, **action** and **reward** as HalfCheetah-v5; truncated at 1000 steps.
    The task scales every body's mass and inertia and every geom's friction in this
    instance's own MuJoCo model.

    **Task features** (log scale)

    ============== ======= ==========
    name           default bounds
    ============== ======= ==========
    mass_scale     1.0     [0.5, 2.0]
    friction_scale 1.0     [0.5, 2.0]
    ============== ======= ==========

    Why these bounds: a cheetah twice as heavy or on ground half as grippy needs a different
    gait to run fast, yet every corner can still run forward.

    Task changes take effect at once. **Version history**: v0, first release.
    """

    task_space = DYNAMICS_TASK_SPACE

    def _apply_task(self, task: Task) -> None:
        model = self.model
        if not hasattr(self, "_base_mass"):
            self._base_mass = model.body_mass.copy()
            self._base_inertia = model.body_inertia.copy()
            self._base_friction = model.geom_friction.copy()
        model.body_mass[:] = self._base_mass * task["mass_scale"]
        model.body_inertia[:] = self._base_inertia * task["mass_scale"]
        model.geom_friction[:] = self._base_friction * task["friction_scale"]
