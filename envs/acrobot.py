"""The Acrobot family: link lengths and masses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.acrobot import AcrobotEnv

from .family import TaskEnv
from .task_space import Feature, Task, TaskSpace
from .vector import BatchedDynamics, register_batched

DT = 0.2
GRAVITY = 9.8
MAX_VEL_1, MAX_VEL_2 = 4 * np.pi, 9 * np.pi
TORQUES = np.array([-1.0, 0.0, 1.0])

TASK_SPACE = TaskSpace(
    [
        Feature(name="link_length_1", default=1.0, low=0.5, high=1.5, unit="m", scale="log"),
        Feature(name="link_length_2", default=1.0, low=0.5, high=1.5, unit="m", scale="log"),
        Feature(name="link_mass_1", default=1.0, low=0.5, high=2.0, unit="kg", scale="log"),
        Feature(name="link_mass_2", default=1.0, low=0.5, high=2.0, unit="kg", scale="log"),
    ]
)


def _derivatives(s: np.ndarray, torque: np.ndarray, task: Mapping[str, Any]) -> np.ndarray:
    m1, m2 = task["link_mass_1"], task["link_mass_2"]
    l1, l2 = task["link_length_1"], task["link_length_2"]
    lc1, lc2 = l1 / 2.0, l2 / 2.0
    # Gymnasium's moment of inertia is 1 for unit links; it scales as m l^2.
    i1, i2 = m1 * l1**2, m2 * l2**2
    th1, th2, dth1, dth2 = (s[..., i] for i in range(4))
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * np.cos(th2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * np.cos(th2)) + i2
    phi2 = m2 * lc2 * GRAVITY * np.cos(th1 + th2 - np.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dth2**2 * np.sin(th2)
        - 2 * m2 * l1 * lc2 * dth2 * dth1 * np.sin(th2)
        + (m1 * lc1 + m2 * l1) * GRAVITY * np.cos(th1 - np.pi / 2)
        + phi2
    )
    ddth2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dth1**2 * np.sin(th2) - phi2) / (
        m2 * lc2**2 + i2 - d2**2 / d1
    )
    ddth1 = -(d2 * ddth2 + phi1) / d1
    return np.stack([dth1, dth2, ddth1, ddth2], axis=-1)


def _wrap(x: np.ndarray) -> np.ndarray:
    return (x + np.pi) % (2 * np.pi) - np.pi


def acrobot_step(
    state: np.ndarray, action: np.ndarray, task: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """One RK4 step of the acrobot ("book" dynamics), batched over leading axes.

    Args:
        state: ``(..., 4)`` joint angles and angular velocities.
        action: ``(...)`` index into the torques (-1, 0, +1).
        task: Feature values, scalars or arrays broadcasting with ``action``.

    Returns:
        Next state and whether the tip is above the target height.
    """
    torque = TORQUES[np.asarray(action)]
    k1 = _derivatives(state, torque, task)
    k2 = _derivatives(state + DT / 2 * k1, torque, task)
    k3 = _derivatives(state + DT / 2 * k2, torque, task)
    k4 = _derivatives(state + DT * k3, torque, task)
    new = state + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    new = np.stack(
        [
            _wrap(new[..., 0]),
            _wrap(new[..., 1]),
            np.clip(new[..., 2], -MAX_VEL_1, MAX_VEL_1),
            np.clip(new[..., 3], -MAX_VEL_2, MAX_VEL_2),
        ],
        axis=-1,
    )
    return new, acrobot_terminal(new, task)


def acrobot_terminal(state: np.ndarray, task: Mapping[str, Any]) -> np.ndarray:
    """The tip is above half the arm's reach (Gymnasium's height 1 for unit links)."""
    l1, l2 = task["link_length_1"], task["link_length_2"]
    th1, th2 = state[..., 0], state[..., 1]
    height = -l1 * np.cos(th1) - l2 * np.cos(th1 + th2)
    return height > (l1 + l2) / 2.0


def acrobot_obs(state: np.ndarray) -> np.ndarray:
    th1, th2 = state[..., 0], state[..., 1]
    return np.stack(
        [np.cos(th1), np.sin(th1), np.cos(th2), np.sin(th2), state[..., 2], state[..., 3]],
        axis=-1,
    ).astype(np.float32)


class AcrobotFamilyEnv(TaskEnv, AcrobotEnv):
    """Swing a two-link arm's tip above a line, for a task of link lengths and masses.

    ## Description

    Gymnasium's `Acrobot-v1`, two links in a chain hanging from a fixed joint, with only
    the joint between the links actuated, and the links' lengths and masses taken from the
    task. The state follows Gymnasium's "book" equations, integrated with RK4 over steps of
    0.2 s; each link's centre of mass sits at its middle and its moment of inertia is
    `m l^2` (Gymnasium's 1 for a unit link). The class attributes `book_or_nips` and
    `torque_noise_max` of Gymnasium's env are not read: always "book", never torque noise
    (Gymnasium's defaults). At the default task the dynamics and rewards are `Acrobot-v1`'s.

    ## Action Space

    `Discrete(3)`: torque -1, 0 or +1 on the joint between the links.

    ## Observation Space

    `Box(6,)` float32, as `Acrobot-v1`: cos and sin of both joint angles, the first joint's
    angular velocity in `[-4 pi, 4 pi]` and the second's in `[-9 pi, 9 pi]`.

    ## Rewards

    -1 per step, 0 for the step that reaches the target height.

    ## Starting State

    Both angles and both angular velocities uniform in `[-0.1, 0.1]` (hanging down);
    `reset`'s options `low` and `high` change these bounds, as in `Acrobot-v1`.

    ## Episode End

    Terminated when the tip rises above `(link_length_1 + link_length_2) / 2` over the
    fixed joint (Gymnasium's height 1 for unit links); truncated after 500 steps (the
    registered time limit).

    ## Arguments

    - `task`: feature values (missing ones take their defaults); `extrapolate=True`
      accepts values outside the bounds.
    - `render_mode`: as `Acrobot-v1` (the drawing follows the task's link lengths).

    ```python
    >>> import gymnasium as gym
    >>> import meta_rl.envs
    >>> env = gym.make("meta_rl/Acrobot-v0", task={"link_length_2": 1.5})
    ```

    ## Task features

    Task changes take effect at once. Lengths and masses set the arm's natural
    frequencies, and so the timing of the pumping torque a swing-up needs.

    ## Version History

    * v0: first release.
    """

    task_space = TASK_SPACE

    def _apply_task(self, task: Task) -> None:
        # Instance attributes shadow AcrobotEnv's class constants, for rendering.
        self.LINK_LENGTH_1, self.LINK_LENGTH_2 = task["link_length_1"], task["link_length_2"]
        self.LINK_MASS_1, self.LINK_MASS_2 = task["link_mass_1"], task["link_mass_2"]
        self.LINK_COM_POS_1, self.LINK_COM_POS_2 = (
            task["link_length_1"] / 2,
            task["link_length_2"] / 2,
        )

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        self.state, terminated = acrobot_step(
            np.asarray(self.state, np.float64), action, self._task
        )
        terminated = bool(terminated)
        if self.render_mode == "human":
            self.render()
        return self._get_ob(), (0.0 if terminated else -1.0), terminated, False, {}

    def _get_ob(self) -> np.ndarray:
        return acrobot_obs(np.asarray(self.state))

    def _terminal(self) -> bool:
        return bool(acrobot_terminal(np.asarray(self.state), self._task))


def _batched() -> BatchedDynamics:
    def reset(rng: np.random.Generator, n: int, tasks: Mapping[str, np.ndarray]) -> np.ndarray:
        return rng.uniform(-0.1, 0.1, (n, 4))  # Acrobot-v1's start

    def step(state: np.ndarray, actions: np.ndarray, tasks: Mapping[str, np.ndarray]):
        new, terminated = acrobot_step(state, np.asarray(actions).reshape(len(state)), tasks)
        return new, np.where(terminated, 0.0, -1.0), terminated

    return BatchedDynamics(reset=reset, step=step, obs=acrobot_obs)


register_batched("Acrobot", _batched)
