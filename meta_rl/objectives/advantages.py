"""Generalised advantage estimation, once for every objective that needs it."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def gae(
    rewards: Array,
    values: Array,
    next_values: Array,
    live: Array,
    *,
    gamma: float,
    gae_lambda: float,
) -> Array:
    """GAE advantages of rollouts shaped ``(envs, steps)`` (NumPy arrays or tensors).

    Args:
        rewards: Reward of each step.
        values: Value of each step's state.
        next_values: Value of the state after each step (bootstrapped where the episode
            goes on).
        live: 1 where the episode goes on after the step, 0 where it ended there.
        gamma: Discount.
        gae_lambda: GAE's lambda (1: the discounted return minus the value).
    """
    zeros = torch.zeros_like if isinstance(rewards, torch.Tensor) else np.zeros_like
    advantages = zeros(rewards)
    running = advantages[:, 0] * 0
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_values[:, t] * live[:, t] - values[:, t]
        running = delta + gamma * gae_lambda * live[:, t] * running
        advantages[:, t] = running
    return advantages
