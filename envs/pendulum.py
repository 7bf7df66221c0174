"""The Pendulum family: Gymnasium's swing-up pendulum with mass, length, gravity and torque."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from .family import TaskEnv
from .task_space import Feature, Task, TaskSpace
from .vector import BatchedDynamics, register_batched

DT = 0.05

TASK_SPACE = TaskSpace(
    [
        Feature(
            name="m",
            default=1.0,
            low=0.5,
            high=2.0,
            unit="kg",
            scale="log",
            doc="mass of the pendulum's tip",
        ),
        Feature(
            name="l",
            default=1.0,
            low=0.5,
            high=1.5,
            unit="m",
            scale="log",
            doc="length of the rod",
        ),
        Feature(name="g", default=10.0, low=5.0, high=15.0, unit="m/s^2", doc="gravity"),
        Feature(
            name="max_torque",
            default=2.0,
            low=1.0,
            high=3.0,
            unit="N m",
            doc="torque limit; the action space is [-max_torque, max_torque]",
        ),
    ]
)


def max_speed(g: np.ndarray | float, l: np.ndarray | float) -> np.ndarray:  # noqa: E741
    """Speed limit that follows the natural frequency: 8 rad/s at g/l = 10."""
    return 8.0 * np.sqrt((np.asarray(g) / np.asarray(l)) / 10.0)


def angle_normalize(x: np.ndarray) -> np.ndarray:
    return ((x + np.pi) % (2 * np.pi)) - np.pi


def pendulum_step(
    state: np.ndarray, torque: np.ndarray, task: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """One step of the pendulum, batched over leading axes.

    Args:
        state: ``(..., 2)`` angle (0 is upright) and angular velocity.
        torque: ``(...)`` applied torque (clipped to ``max_torque``).
        task: Feature values, scalars or arrays broadcasting with ``torque``.

    Returns:
        The next state and the reward.
    """
    m, l, g = task["m"], task["l"], task["g"]  # noqa: E741
    th, thdot = state[..., 0], state[..., 1]
    u = np.clip(torque, -task["max_torque"], task["max_torque"])
    cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
    limit = max_speed(g, l)
    new_thdot = thdot + (3.0 * g / (2.0 * l) * np.sin(th) + 3.0 / (m * l**2) * u) * DT
    new_thdot = np.clip(new_thdot, -limit, limit)
    new_th = th + new_thdot * DT
    return np.stack([new_th, new_thdot], axis=-1), -cost


def pendulum_obs(state: np.ndarray) -> np.ndarray:
    th, thdot = state[..., 0], state[..., 1]
    return np.stack([np.cos(th), np.sin(th), thdot], axis=-1).astype(np.float32)


def _spaces(task: Task) -> tuple[spaces.Box, spaces.Box]:
    high = np.array([1.0, 1.0, max_speed(task["g"], task["l"])], dtype=np.float32)
    torque = np.float32(task["max_torque"])
    return (
        spaces.Box(low=-high, high=high, dtype=np.float32),
        spaces.Box(low=-torque, high=torque, shape=(1,), dtype=np.float32),
    )


class PendulumFamilyEnv(TaskEnv, PendulumEnv):
    """Swing a pendulum up and hold it upright, for a task of mass, length, gravity and torque.

    **Observation** ``Box(3)``: ``cos(theta)``, ``sin(theta)``, angular velocity in
    ``[-max_speed, max_speed]``. **Action** ``Box(1)``: torque in ``[-max_torque, max_torque]``
    (the action space follows the task). **Reward**: ``-(theta^2 + 0.1 thetadot^2 +
    0.001 u^2)``, as Pendulum-v1. Episodes are truncated at 200 steps; never terminated.

    **Dynamics**: ``thetadot += (3g/(2l) sin(theta) + 3/(m l^2) u) dt`` with ``dt = 0.05``,
    then clipped to ``max_speed = 8 sqrt((g / l) / 10)``. Gymnasium fixes ``max_speed = 8``;
    a short pendulum under strong gravity then cannot reach the top, since a swing-up needs
    a top speed of about ``sqrt(6 g / l)``. At the default task the dynamics and reward
    equal Pendulum-v1's.

    **Task features**

    ========== ======= ============ ====== =====
    name       default bounds       unit   scale
    ========== ======= ============ ====== =====
    m          1.0     [0.5, 2.0]   kg     log
    l          1.0     [0.5, 1.5]   m      log
    g          10.0    [5, 15]      m/s^2  linear
    max_torque 2.0     [1.0, 3.0]   N m    linear
    ========== ======= ============ ====== =====

    Why these bounds: the control authority ``3 max_torque / (m l^2)`` against gravity's
    ``3 g / (2 l)`` ranges from enough to lift the pendulum straight up (light, short, strong
    motor) to needing several pumping swings (heavy, long, weak motor), so a single policy's
    timing is wrong across the space, while every task can still be swung up in 200 steps.

    Task changes take effect at once. **Version history**: v0, first release.
    """

    task_space = TASK_SPACE

    def _apply_task(self, task: Task) -> None:
        self.m, self.l, self.g = task["m"], task["l"], task["g"]
        self.max_torque = task["max_torque"]
        self.max_speed = float(max_speed(task["g"], task["l"]))
        self.observation_space, self.action_space = _spaces(task)

    def widest_spaces(self) -> tuple[spaces.Box, spaces.Box]:
        widest = {**self.task, "g": TASK_SPACE["g"].high, "l": TASK_SPACE["l"].low}
        widest["max_torque"] = TASK_SPACE["max_torque"].high
        return _spaces(widest)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        u = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        self.state, reward = pendulum_step(np.asarray(self.state, np.float64), u, self._task)
        self.last_u = float(np.clip(u, -self.max_torque, self.max_torque))
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(reward), False, False, {}

    def _get_obs(self) -> np.ndarray:
        return pendulum_obs(np.asarray(self.state))


def _batched() -> BatchedDynamics:
    def reset(rng: np.random.Generator, n: int, tasks: Mapping[str, np.ndarray]) -> np.ndarray:
        # Pendulum-v1's start: angle in [-pi, pi], angular velocity in [-1, 1].
        return np.stack([rng.uniform(-np.pi, np.pi, n), rng.uniform(-1.0, 1.0, n)], axis=-1)

    def step(state: np.ndarray, actions: np.ndarray, tasks: Mapping[str, np.ndarray]):
        torque = np.asarray(actions, np.float64).reshape(len(state), -1)[:, 0]
        new, reward = pendulum_step(state, torque, tasks)
        return new, reward, np.zeros(len(state), dtype=bool)

    return BatchedDynamics(reset=reset, step=step, obs=pendulum_obs)


register_batched("Pendulum", _batched)
