"""Evaluation: episode returns of a policy on a task, and the normalised score."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import gymnasium as gym
import numpy as np

from meta_rl.envs import Family

Policy = Callable[[np.ndarray], np.ndarray | int]
"""Maps one observation to one action."""


def run_episodes(
    env: gym.Env, policy: Policy | None, *, episodes: int, seed: int = 0
) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes, seeded ``seed, seed+1, ...``.

    Args:
        env: The env (closed by the caller).
        policy: Observation to action; ``None`` for uniformly random actions drawn from the
            action space seeded with ``seed``.
        episodes: Number of episodes.
        seed: First reset seed.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    env.action_space.seed(seed)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def summarise(returns: list[float]) -> dict[str, float | list[float]]:
    """``return_mean``, ``return_std`` and the list of ``returns``."""
    arr = np.asarray(returns, dtype=np.float64)
    return {"return_mean": float(arr.mean()), "return_std": float(arr.std()), "returns": returns}


def random_rollout(
    family: Family, task: Mapping[str, float], *, episodes: int = 1, seed: int = 0
) -> dict[str, float | list[float]]:
    """Returns of a uniformly random policy on ``task``."""
    env = family.make(task=task)
    try:
        return summarise(run_episodes(env, None, episodes=episodes, seed=seed))
    finally:
        env.close()


def normalised_score(value: float, random: float, oracle: float) -> float:
    """``(value - random) / (oracle - random)``: 0 is random, 1 the oracle.

    Raises:
        ValueError: the oracle is not better than random (the score is undefined).
    """
    if not oracle > random:
        raise ValueError(
            f"normalised score undefined: oracle return {oracle:g} is not above random {random:g}"
        )
    return (value - random) / (oracle - random)
