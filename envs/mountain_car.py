"""The MountainCarContinuous family: engine power and the slope's gravity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv

from .family import TaskEnv
from .task_space import Feature, Task, TaskSpace
from .vector import BatchedDynamics, register_batched

MIN_POSITION, MAX_POSITION, MAX_SPEED = -1.2, 0.6, 0.07
GOAL_POSITION = 0.45

TASK_SPACE = TaskSpace(
    [
        Feature(
            name="power",
            default=0.0015,
            low=0.001,
            high=0.003,
            scale="log",
            doc="velocity change per step at full throttle",
        ),
        Feature(
            name="gravity",
            default=0.0025,
            low=0.0015,
            high=0.0035,
            doc="velocity change per step from the slope, times cos(3 x)",
        ),
    ]
)


def mountain_car_step(
    state: np.ndarray,
    action: np.ndarray,
    task: Mapping[str, Any],
    goal_velocity: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step, batched over leading axes.

    Args:
        state: ``(..., 2)`` position and velocity.
        action: ``(...)`` throttle in [-1, 1] (clipped).
        task: Feature values, scalars or arrays broadcasting with ``action``.
        goal_velocity: Least velocity at the goal that ends the episode (Gymnasium's).

    Returns:
        Next state, reward (+100 on reaching the goal, minus 0.1 times the squared throttle)
        and whether the goal was reached.
    """
    position, velocity = state[..., 0], state[..., 1]
    force = np.clip(action, -1.0, 1.0)
    velocity = velocity + force * task["power"] - task["gravity"] * np.cos(3 * position)
    velocity = np.clip(velocity, -MAX_SPEED, MAX_SPEED)
    position = np.clip(position + velocity, MIN_POSITION, MAX_POSITION)
    velocity = np.where((position == MIN_POSITION) & (velocity < 0), 0.0, velocity)
    reached = (position >= GOAL_POSITION) & (velocity >= goal_velocity)
    reward = np.where(reached, 100.0, 0.0) - 0.1 * np.asarray(action, np.float64) ** 2
    return np.stack([position, velocity], axis=-1), reward, reached


class MountainCarContinuousFamilyEnv(TaskEnv, Continuous_MountainCarEnv):
    """Drive an under-powered car up a hill, for a task of engine power and slope gravity.

    ## Description

    Gymnasium's `MountainCarContinuous-v0`, a car in a valley between two hills that must
    build up momentum to reach the flag on the right one, with the engine's power and the
    slope's gravity taken from the task. Each step adds `throttle * power - gravity *
    cos(3 x)` to the velocity, clips it to `[-0.07, 0.07]`, then moves the position by it
    within `[-1.2, 0.6]` (a car stopped by the left wall loses its leftward speed). At the
    default task the dynamics and rewards are `MountainCarContinuous-v0`'s.

    ## Action Space

    `Box(-1, 1, (1,), float32)`: the throttle; values outside `[-1, 1]` are clipped in the
    dynamics (not in the action cost).

    ## Observation Space

    `Box(2,)` float32, as `MountainCarContinuous-v0`: position in `[-1.2, 0.6]`, velocity in
    `[-0.07, 0.07]`.

    ## Rewards

    +100 for the step that reaches the goal, minus `0.1 throttle^2` at every step.

    ## Starting State

    Position uniform in `[-0.6, -0.4]`, velocity 0; `reset`'s options `low` and `high`
    change the position's bounds, as in `MountainCarContinuous-v0`.

    ## Episode End

    Terminated when the position reaches 0.45 with a velocity of at least `goal_velocity`;
    truncated after 999 steps (the registered time limit).

    ## Arguments

    - `task`: feature values (missing ones take their defaults); `extrapolate=True`
      accepts values outside the bounds.
    - `goal_velocity`: as `MountainCarContinuous-v0` (default 0); the batched env
      (`make_vec`) takes it too.
    - `render_mode`: as `MountainCarContinuous-v0`.

    ```python
    >>> import gymnasium as gym
    >>> import meta_rl.envs
    >>> env = gym.make("meta_rl/MountainCarContinuous-v0", task={"power": 0.001})
    ```

    ## Task features

    Task changes take effect at once. Where `power` exceeds `gravity` the car can drive
    straight up the slope; below it (the default, 0.0015 against 0.0025) it must swing back
    and forth, and how many swings it needs, so the timing of the turn-arounds, changes
    across the space.

    ## Version History

    * v0: first release. `goal_velocity` is honoured as in `MountainCarContinuous-v0`.
    """

    task_space = TASK_SPACE

    def _apply_task(self, task: Task) -> None:
        self.power = task["power"]
        self.gravity = task["gravity"]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        state, reward, reached = mountain_car_step(
            np.asarray(self.state, np.float64), a, self._task, self.goal_velocity
        )
        self.state = state.astype(np.float32)
        if self.render_mode == "human":
            self.render()
        return self.state.copy(), float(reward), bool(reached), False, {}


def _batched(goal_velocity: float = 0.0) -> BatchedDynamics:
    def reset(rng: np.random.Generator, n: int, tasks: Mapping[str, np.ndarray]) -> np.ndarray:
        # Gymnasium's start: position in [-0.6, -0.4], at rest; the state is float32 there.
        return np.stack([rng.uniform(-0.6, -0.4, n), np.zeros(n)], axis=-1).astype(np.float32)

    def step(state: np.ndarray, actions: np.ndarray, tasks: Mapping[str, np.ndarray]):
        throttle = np.asarray(actions, np.float64).reshape(len(state), -1)[:, 0]
        new, reward, reached = mountain_car_step(
            state.astype(np.float64), throttle, tasks, goal_velocity
        )
        return new.astype(np.float32), reward, reached

    return BatchedDynamics(reset=reset, step=step, obs=lambda s: np.array(s, np.float32))


register_batched("MountainCarContinuous", _batched)
