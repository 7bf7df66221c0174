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

    ## Description

    Gymnasium's `Pendulum-v1`, a rod hinged at one end and driven by a torque at the hinge,
    with its mass `m`, its length `l`, gravity `g` and the torque limit `max_torque` taken
    from the task. Each step of `dt = 0.05` s updates the angular
    velocity by `(3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt`, clips it to `max_speed`, then
    moves the angle by the new velocity times `dt` (`theta = 0` is upright).

    Gymnasium fixes `max_speed = 8` rad/s. Here it follows the pendulum's natural frequency,
    `max_speed = 8 sqrt((g / l) / 10)` (8 at the default task), because a swing-up passes
    the top at about `sqrt(6 g / l)`: a fixed limit would make short pendulums under strong
    gravity impossible to lift. At the default task the dynamics and reward are
    `Pendulum-v1`'s.

    ## Action Space

    `Box(-max_torque, max_torque, (1,), float32)`: the torque at the hinge, clipped to the
    task's limit. The space follows the task (`widest_spaces()` holds every task's).

    ## Observation Space

    `Box(3,)` float32: `cos(theta)` and `sin(theta)` in `[-1, 1]`, and the angular velocity
    in `[-max_speed, max_speed]` (following the task).

    ## Rewards

    `-(theta^2 + 0.1 thetadot^2 + 0.001 u^2)`, with `theta` normalised to `[-pi, pi]` and
    `u` the clipped torque, as in `Pendulum-v1`.

    ## Starting State

    Angle uniform in `[-pi, pi]`, angular velocity uniform in `[-1, 1]`; `reset`'s options
    `x_init` and `y_init` change these bounds, as in `Pendulum-v1`.

    ## Episode End

    Never terminated; truncated after 200 steps (the registered time limit).

    ## Arguments

    - `task`: feature values (missing ones take their defaults); `extrapolate=True`
      accepts values outside the bounds.
    - `render_mode`: as `Pendulum-v1`.
    - `g`: refused (`ValueError`); gravity is the task feature `g`.

    ```python
    >>> import gymnasium as gym
    >>> import meta_rl.envs
    >>> env = gym.make("meta_rl/Pendulum-v0", task={"m": 1.5, "g": 9.81})
    ```

    ## Task features

    Task changes take effect at once. The motor can lift the pendulum straight up when
    `max_torque > m g l / 2`: the bounds reach from tasks where it can (light, short, strong
    motor, weak gravity) to tasks that need many pumping swings (heavy, long, weak motor,
    strong gravity), so the timing a policy needs changes across the space.

    ## Version History

    * v0: first release. Gymnasium keywords the family cannot honour are refused.
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
