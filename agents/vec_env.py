"""Batched family environments for Stable-Baselines3: a task per sub-environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

from meta_rl.envs import Family, Task
from meta_rl.envs.vector import FamilyVectorEnv


class FamilyVecEnv(VecEnv):
    """A batched family environment (:class:`FamilyVectorEnv`) as SB3's ``VecEnv``.

    SB3 resets a finished sub-environment in the same step and reads the last observation
    from ``info["terminal_observation"]``, and a time limit from
    ``info["TimeLimit.truncated"]``; this adapter runs the batched env in ``SAME_STEP`` mode
    and writes both.

    Args:
        family: Family name or :class:`Family`.
        num_envs: Number of sub-environments.
        tasks: As :class:`FamilyVectorEnv`.
        seed: Seed of the first reset.
    """

    def __init__(
        self,
        family: str | Family,
        num_envs: int,
        tasks: Sequence[Task] | Task | None = None,
        *,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.venv = FamilyVectorEnv(
            family, num_envs, tasks, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs
        )
        super().__init__(
            num_envs, self.venv.single_observation_space, self.venv.single_action_space
        )
        self._seed = seed
        self._actions: np.ndarray | None = None
        self._episode_returns = np.zeros(num_envs)
        self._episode_lengths = np.zeros(num_envs, dtype=np.int64)

    def reset(self) -> np.ndarray:
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed = None
        self._episode_returns[:] = 0
        self._episode_lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if isinstance(self.action_space, gym.spaces.Box):
            actions = actions.reshape(self.num_envs, *self.action_space.shape)
        self._actions = actions

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called before step_async()")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        self._episode_returns += reward
        self._episode_lengths += 1
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            infos[i] = {
                "terminal_observation": info["final_obs"][i],
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "episode": {
                    "r": float(self._episode_returns[i]),
                    "l": int(self._episode_lengths[i]),
                },
            }
            self._episode_returns[i] = 0.0
            self._episode_lengths[i] = 0
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.venv.close()

    def seed(self, seed: int | None = None) -> list[int | None]:
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None for _ in self._indices(indices)]
        if attr_name == "task":
            return [self.venv.tasks[i] for i in self._indices(indices)]
        return [getattr(self.venv, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        if attr_name != "task":
            raise AttributeError(
                f"only 'task' can be set on a batched family env, not {attr_name!r}"
            )
        for i in self._indices(indices):
            self.venv.set_task(i, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any):
        if method_name != "set_task":
            raise AttributeError("batched family envs support env_method('set_task') only")
        return [self.venv.set_task(i, *args, **kwargs) for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> list[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)
