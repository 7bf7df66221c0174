"""The CartPole family: Gymnasium's cart-pole balance with gravity, masses, length and force."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import logger
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from .family import TaskEnv
from .task_space import Feature, Task, TaskSpace
from .vector import BatchedDynamics, register_batched

TAU = 0.02
X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * math.pi / 360

TASK_SPACE = TaskSpace(
    [
        Feature(name="gravity", default=9.8, low=4.9, high=19.6, unit="m/s^2", scale="log"),
        Feature(name="masscart", default=1.0, low=0.5, high=3.0, unit="kg", scale="log"),
        Feature(name="masspole", default=0.1, low=0.05, high=0.5, unit="kg", scale="log"),
        Feature(
            name="length",
            default=0.5,
            low=0.25,
            high=1.25,
            unit="m",
            scale="log",
            doc="half the pole's length",
        ),
        Feature(name="force_mag", default=10.0, low=5.0, high=20.0, unit="N", scale="log"),
    ]
)


def cartpole_step(
    state: np.ndarray, action: np.ndarray, task: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """One Euler step of the cart-pole, batched over leading axes.

    Args:
        state: ``(..., 4)`` cart position, cart velocity, pole angle, pole angular velocity.
        action: ``(...)`` 0 pushes left, 1 pushes right.
        task: Feature values, scalars or arrays broadcasting with ``action``.

    Returns:
        The next state and whether it is terminal (pole fallen or cart out of bounds).
    """
    masspole, length = task["masspole"], task["length"]
    total_mass = masspole + task["masscart"]
    polemass_length = masspole * length
    x, x_dot, theta, theta_dot = (state[..., i] for i in range(4))
    force = np.where(np.asarray(action) == 1, task["force_mag"], -task["force_mag"])
    cos, sin = np.cos(theta), np.sin(theta)
    temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
    theta_acc = (task["gravity"] * sin - cos * temp) / (
        length * (4.0 / 3.0 - masspole * cos**2 / total_mass)
    )
    x_acc = temp - polemass_length * theta_acc * cos / total_mass
    new = np.stack(
        [
            x + TAU * x_dot,
            x_dot + TAU * x_acc,
            theta + TAU * theta_dot,
            theta_dot + TAU * theta_acc,
        ],
        axis=-1,
    )
    terminated = (np.abs(new[..., 0]) > X_THRESHOLD) | (np.abs(new[..., 2]) > THETA_THRESHOLD)
    return new, terminated


def cartpole_reward(terminated: np.ndarray | bool, sutton_barto_reward: bool) -> np.ndarray:
    """Reward of a step up to and including the one that ends the episode, batched.

    +1 per step (the ending one too); with ``sutton_barto_reward``, 0 per step and -1 for
    the ending one, as Gymnasium's ``CartPole-v1``.
    """
    terminated = np.asarray(terminated, dtype=bool)
    if sutton_barto_reward:
        return np.where(terminated, -1.0, 0.0)
    return np.ones(terminated.shape)


class CartPoleFamilyEnv(TaskEnv, CartPoleEnv):
    """Balance a pole on a cart, for a task of gravity, masses, pole length and push force.

    ## Description

    Gymnasium's `CartPole-v1`, a pole hinged on a cart that moves along a frictionless
    track, with gravity, the cart's and the pole's masses, the pole's half-length and the
    push force taken from the task. The state follows Gymnasium's equations with an Euler
    step of 0.02 s. At the default task the dynamics and rewards are `CartPole-v1`'s.

    ## Action Space

    `Discrete(2)`: 0 pushes the cart left, 1 pushes it right, with force `force_mag`.

    ## Observation Space

    `Box(4,)` float32, as `CartPole-v1`: cart position in `[-4.8, 4.8]`, cart velocity,
    pole angle in about `[-0.418, 0.418]` rad, pole angular velocity (unbounded).

    ## Rewards

    +1 for every step, the terminating one included; with `sutton_barto_reward=True`, 0 per
    step and -1 for the terminating one. Steps after termination (undefined behaviour: call
    `reset`) give 0, or -1 with `sutton_barto_reward`, and the first one warns through
    `gymnasium.logger`, as in `CartPole-v1`.

    ## Starting State

    Every state variable uniform in `(-0.05, 0.05)`; `reset`'s options `low` and `high`
    change these bounds, as in `CartPole-v1`.

    ## Episode End

    Terminated when the pole leans more than 12 degrees or the cart's centre leaves
    `[-2.4, 2.4]`; truncated after 500 steps (the registered time limit).

    ## Arguments

    - `task`: feature values (missing ones take their defaults); `extrapolate=True`
      accepts values outside the bounds.
    - `sutton_barto_reward`: as `CartPole-v1`; the batched env (`make_vec`) takes it too.
    - `render_mode`: as `CartPole-v1`.

    ```python
    >>> import gymnasium as gym
    >>> import meta_rl.envs
    >>> env = gym.make("meta_rl/CartPole-v0", task={"length": 1.0}, sutton_barto_reward=True)
    ```

    ## Task features

    Derived quantities (total mass, pole mass times length) follow every task change, which
    takes effect at once. Across the bounds the pole's rate of fall, `sqrt(gravity /
    length)`, varies about 4.5-fold and the cart's acceleration under a push,
    `force_mag / (masscart + masspole)`, about 25-fold, so the gains a balancing policy needs
    differ across the space.

    ## Version History

    * v0: first release. `sutton_barto_reward` and the steps after termination behave as in
      `CartPole-v1`.
    """

    task_space = TASK_SPACE

    def _apply_task(self, task: Task) -> None:
        self.gravity, self.masscart, self.masspole = (
            task["gravity"],
            task["masscart"],
            task["masspole"],
        )
        self.length, self.force_mag = task["length"], task["force_mag"]
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        state, terminated = cartpole_step(np.asarray(self.state, np.float64), action, self._task)
        self.state = state
        terminated = bool(terminated)
        if not terminated or self.steps_beyond_terminated is None:
            if terminated:
                self.steps_beyond_terminated = 0
            reward = float(cartpole_reward(terminated, self._sutton_barto_reward))
        else:
            # Stepping on past the end, as CartPole-v1: warn once; reward 0 (-1 with Sutton
            # and Barto's reward).
            if self.steps_beyond_terminated == 0:
                logger.warn(
                    "step() called after this episode terminated (terminated=True): the "
                    "steps that follow are undefined behaviour; call reset() first"
                )
            self.steps_beyond_terminated += 1
            reward = -1.0 if self._sutton_barto_reward else 0.0
        if self.render_mode == "human":
            self.render()
        return np.asarray(state, dtype=np.float32), reward, terminated, False, {}


def _batched(sutton_barto_reward: bool = False) -> BatchedDynamics:
    def reset(rng: np.random.Generator, n: int, tasks: Mapping[str, np.ndarray]) -> np.ndarray:
        return rng.uniform(-0.05, 0.05, (n, 4))  # CartPole-v1's start

    def step(state: np.ndarray, actions: np.ndarray, tasks: Mapping[str, np.ndarray]):
        new, terminated = cartpole_step(state, np.asarray(actions).reshape(len(state)), tasks)
        return new, cartpole_reward(terminated, sutton_barto_reward), terminated

    return BatchedDynamics(reset=reset, step=step, obs=lambda s: np.asarray(s, np.float32))


register_batched("CartPole", _batched)
