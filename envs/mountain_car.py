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

    **Observation** ``Box(2)``: position in [-1.2, 0.6], velocity in [-0.07, 0.07].
    **Action** ``Box(1)``: throttle in [-1, 1]. **Reward**: +100 on reaching position 0.45,
    minus ``0.1 a^2`` per step, as MountainCarContinuous-v0. Terminated at the goal;
    truncated at 999 steps. At the default task the dynamics equal Gymnasium's.

    **Task features**

    ======= ======= ================ =====
    name    default bounds           scale
    ======= ======= ================ =====
    power   0.0015  [0.001, 0.003]   log
    gravity 0.0025  [0.0015, 0.0035] linear
    ======= ======= ================ =====

    Why these bounds: with a strong engine on a gentle slope the car drives almost straight
    up; with a weak engine on a steep one it needs several swings, and the number of swings
    (so the timing of the turn-arounds) changes across the space. The weakest corner still
    reaches the goal well within 999 steps by pushing along the velocity.

    Task changes take effect at once. **Version history**: v0, first release.
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
