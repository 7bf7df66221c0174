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

    ## Description

    Gymnasium's `HalfCheetah-v5`, a planar two-legged robot driven at six joints, rewarded
    for running at the task's target velocity instead of as fast as it can. The body and
    the physics are `HalfCheetah-v5`'s at every task.

    ## Action Space

    `Box(-1, 1, (6,), float32)`: the torques at the six joints, as `HalfCheetah-v5`.

    ## Observation Space

    As `HalfCheetah-v5`: `Box(17,)` float64 of joint positions (the front tip's `x` left
    out) and velocities, `Box(18,)` with `exclude_current_positions_from_observation=False`.

    ## Rewards

    `-|v - target_velocity| - 0.05 |a|^2`, with `v` the forward velocity (`info`'s
    `x_velocity`) and `a` the action; `info` splits it into `reward_forward` and
    `reward_ctrl`.

    ## Starting State

    As `HalfCheetah-v5`: the initial pose with uniform noise on positions and normal noise
    on velocities, both of scale `reset_noise_scale`.

    ## Episode End

    Never terminated; truncated after 200 steps, the MAML paper's horizon (the registered
    time limit).

    ## Arguments

    - `task`: feature values (missing ones take their defaults); `extrapolate=True`
      accepts values outside the bounds.
    - `xml_file`, `frame_skip`, `reset_noise_scale`,
      `exclude_current_positions_from_observation`: as `HalfCheetah-v5`.
    - `render_mode`, `width`, `height`, `camera_id`, `camera_name`,
      `default_camera_config`, `max_geom`, `visual_options`: rendering, as `HalfCheetah-v5`.
    - `forward_reward_weight`, `ctrl_cost_weight`: refused (`ValueError`); this family's
      reward has its own fixed terms.

    ```python
    >>> import gymnasium as gym
    >>> import meta_rl.envs
    >>> env = gym.make("meta_rl/HalfCheetahVel-v0", task={"target_velocity": 0.5})
    ```

    ## Task features

    Task changes take effect at once. The MAML paper draws targets uniformly in `[0, 2]`;
    standing still and running at 2 m/s need different gaits, so one policy cannot fit all.

    ## Version History

    * v0: first release. Gymnasium keywords the family cannot honour are refused.
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

    ## Description

    Gymnasium's `HalfCheetah-v5`, a planar two-legged robot driven at six joints, rewarded
    for running forward, with every body's mass and inertia and every geom's friction
    scaled by the task in this instance's own MuJoCo model. At the default task the
    dynamics and rewards are `HalfCheetah-v5`'s.

    ## Action Space

    `Box(-1, 1, (6,), float32)`: the torques at the six joints, as `HalfCheetah-v5`.

    ## Observation Space

    As `HalfCheetah-v5`: `Box(17,)` float64 of joint positions (the front tip's `x` left
    out) and velocities, `Box(18,)` with `exclude_current_positions_from_observation=False`.

    ## Rewards

    As `HalfCheetah-v5`: `forward_reward_weight * v - ctrl_cost_weight * |a|^2`, with `v`
    the forward velocity and `a` the action.

    ## Starting State

    As `HalfCheetah-v5`: the initial pose with uniform noise on positions and normal noise
    on velocities, both of scale `reset_noise_scale`.

    ## Episode End

    Never terminated; truncated after 1000 steps (the registered time limit).

    ## Arguments

    - `task`: feature values (missing ones take their defaults); `extrapolate=True`
      accepts values outside the bounds.
    - `xml_file`, `frame_skip`, `reset_noise_scale`,
      `exclude_current_positions_from_observation`: as `HalfCheetah-v5`.
    - `render_mode`, `width`, `height`, `camera_id`, `camera_name`,
      `default_camera_config`, `max_geom`, `visual_options`: rendering, as `HalfCheetah-v5`.
    - `forward_reward_weight`, `ctrl_cost_weight`: as `HalfCheetah-v5`.

    ```python
    >>> import gymnasium as gym
    >>> import meta_rl.envs
    >>> env = gym.make("meta_rl/HalfCheetah-v0", task={"mass_scale": 1.5})
    ```

    ## Task features

    Task changes take effect at once: the scales apply to the model's masses, inertias and
    frictions as loaded from `xml_file`. A cheetah twice as heavy, or on ground half as
    grippy, needs a different gait to run fast.

    ## Version History

    * v0: first release.
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
