"""Wrappers for family envs, accepted by Stable-Baselines3."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from meta_rl.errors import TaskError

from .family import family_of
from .task_space import Task, TaskSpace

TaskSampler = Callable[[np.random.Generator], Mapping[str, float]]
"""Draws a task from a generator."""


def as_sampler(tasks: TaskSpace | Sequence[Mapping[str, float]] | TaskSampler) -> TaskSampler:
    """A sampler from a task space (uniform), a list of tasks (uniform choice) or a function."""
    if isinstance(tasks, TaskSpace):
        return tasks.sampler()
    if callable(tasks):
        return tasks
    pool = [dict(t) for t in tasks]
    if not pool:
        raise TaskError("the list of tasks to sample from is empty")

    def choose(rng: np.random.Generator) -> Task:
        return dict(pool[int(rng.integers(len(pool)))])

    return choose


class DescriptorObservation(gym.ObservationWrapper):
    """Append the task descriptor to a ``Box`` observation (for context-conditioned agents).

    The descriptor is read at every step, so it follows task changes.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._family = family_of(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise TaskError(
                f"DescriptorObservation needs a flat Box observation space, got {space}"
            )
        dim = self._family.task_space.dim
        self.observation_space = gym.spaces.Box(
            low=np.concatenate([space.low, -np.ones(dim)]).astype(np.float32),
            high=np.concatenate([space.high, np.ones(dim)]).astype(np.float32),
            dtype=np.float32,
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        out = np.empty(self.observation_space.shape, dtype=np.float32)
        n = len(observation)
        out[:n] = observation
        out[n:] = self._family._descriptor  # read, not copied: the descriptor is per task
        return out


class TaskResampling(gym.Wrapper):
    """Draw a new task at every reset.

    The task is drawn with the env's own generator (``env.np_random``), so
    ``reset(seed=s)`` makes the sequence of tasks reproducible. The wrapper declares the
    family's widest spaces, which hold every task's observations and actions; the drawn
    task is in ``info["task"]``.

    Args:
        env: A family env.
        tasks: A task space (uniform draws), a list of tasks, or ``fn(rng) -> task``.
    """

    def __init__(
        self, env: gym.Env, tasks: TaskSpace | Sequence[Mapping[str, float]] | TaskSampler
    ):
        super().__init__(env)
        self._family = family_of(env)
        self._sample = as_sampler(tasks)
        self.observation_space, self.action_space = self._family.widest_spaces()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self.env.unwrapped.np_random, _ = seeding.np_random(seed)
        task = self._sample(self.env.unwrapped.np_random)
        self._family.set_task(task)
        obs, info = self.env.reset(options=options)
        return obs, {**info, "task": self._family.task}
