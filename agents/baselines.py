"""Baselines that are SB3 agents: the context-conditioned multi-task policy.

(The two a user compares against first, the default-task expert and the zero-shot
prediction, are :func:`meta_rl.agents.base_policy` and :func:`meta_rl.agents.adapt` before
any ``learn``; :func:`meta_rl.agents.evaluate` scores them on seeded episodes.)

The strongest alternative a user has: one PPO policy that sees the task descriptor in its
observation and meets a new training task at every reset. Given the same env steps as the
mapping pipeline, it is what the mapping has to beat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from tqdm.auto import tqdm

from meta_rl.envs import DescriptorObservation, Family, Task, TaskResampling
from meta_rl.errors import ConfigError
from meta_rl.evaluation import run_episodes
from meta_rl.infra.sb3 import make_agent
from meta_rl.mapping.policy import PolicyArch
from meta_rl.training.recipes import Recipe

from .threads import DEFAULT_THREADS, scope_learn, torch_threads


class StepProgress(BaseCallback):
    """A tqdm bar over env steps. SB3's own ``progress_bar`` needs ``rich``, which is not a
    dependency of this project."""

    def __init__(self, total: int, desc: str) -> None:
        super().__init__()
        self.total, self.desc = total, desc
        self.bar: Any = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def make_context_env(family: Family, tasks: Sequence[Mapping[str, float]]):
    """A family env that draws one of ``tasks`` at every reset and shows its descriptor."""
    return DescriptorObservation(TaskResampling(family.make(), [dict(t) for t in tasks]))


def train_context_policy(
    family: Family,
    tasks: Sequence[Task],
    recipe: Recipe,
    *,
    steps: int,
    seed: int,
    progress_bar: bool = False,
    threads: int | None = DEFAULT_THREADS,
) -> PPO:
    """PPO on ``n_envs`` envs that resample their task from ``tasks`` at every reset.

    Args:
        family: The family.
        tasks: Training tasks.
        recipe: The family's recipe (PPO settings, envs, policy sizes).
        steps: Env steps, usually those the mapping pipeline spent in total.
        seed: Seed of PPO and of the envs' task draws.
        progress_bar: Show a progress bar.
        threads: Torch threads while it builds and learns, here and in later ``learn``
            calls (see :mod:`meta_rl.agents.threads`); ``None``: torch's setting.
    """
    if not tasks:
        raise ConfigError("the context-conditioned policy needs at least one training task")
    env = make_vec_env(lambda: make_context_env(family, tasks), n_envs=recipe.n_envs, seed=seed)
    arch = PolicyArch(
        obs_dim=int(env.observation_space.shape[0]),
        action_kind="discrete" if hasattr(env.action_space, "n") else "box",
        action_dim=int(getattr(env.action_space, "n", 0) or env.action_space.shape[0]),
        pi=recipe.pi,
        vf=recipe.vf,
        log_std_init=recipe.log_std_init,
    )
    with torch_threads(threads):
        model = make_agent(
            family, None, arch, recipe.scratch, n_envs=recipe.n_envs, seed=seed, env=env
        )
    model = scope_learn(model, threads)
    model.learn(steps, callback=StepProgress(steps, "context policy") if progress_bar else None)
    return model


def evaluate_context_policy(
    model: PPO, family: Family, task: Mapping[str, float], *, episodes: int, seed: int
) -> float:
    """Mean deterministic return of the context-conditioned policy on one task."""
    env = DescriptorObservation(family.make(task=task))
    norm = model.get_vec_normalize_env()  # a recipe's runs from scratch may normalise
    try:

        def act(obs: np.ndarray) -> Any:
            if norm is not None:
                obs = norm.normalize_obs(obs)
            return model.predict(obs, deterministic=True)[0]

        return float(np.mean(run_episodes(env, act, episodes=episodes, seed=seed)))
    finally:
        env.close()
