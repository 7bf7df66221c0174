"""Everything that builds Stable-Baselines3 agents (installed as ``meta_rl.agents``)."""

from __future__ import annotations

from meta_rl.infra.divergence import DivergenceGuard, DivergenceWarning

from .adapt import ExtrapolationWarning, adapt, load_mapping, resolve_task
from .vec_env import FamilyVecEnv

__all__ = [
    "DivergenceGuard",
    "DivergenceWarning",
    "ExtrapolationWarning",
    "FamilyVecEnv",
    "adapt",
    "load_mapping",
    "resolve_task",
]
