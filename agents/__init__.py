"""Everything that builds Stable-Baselines3 agents (installed as ``meta_rl.agents``)."""

from __future__ import annotations

from .adapt import ExtrapolationWarning, adapt, load_mapping, resolve_task

__all__ = ["ExtrapolationWarning", "adapt", "load_mapping", "resolve_task"]
