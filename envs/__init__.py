"""Parameterized Gymnasium environment families (installed as ``meta_rl.envs``).

Importing this module registers every built-in family as ``meta_rl/<Family>-v0``. A Box2D or
MuJoCo family whose extra is not installed is still registered with Gymnasium (making it
raises Gymnasium's ``DependencyNotInstalled``), and ``get_family`` names the extra to install.
"""

from __future__ import annotations

from .family import (
    Family,
    TaskEnv,
    families,
    family_of,
    get_family,
    make_family,
    register_family,
)
from .registry import register_builtin_families
from .task_space import Feature, Task, TaskSpace, TaskSplit
from .wrappers import DescriptorObservation, TaskResampling, TaskSampler, as_sampler

register_builtin_families()

__all__ = [
    "DescriptorObservation",
    "Family",
    "Feature",
    "Task",
    "TaskEnv",
    "TaskResampling",
    "TaskSampler",
    "TaskSpace",
    "TaskSplit",
    "as_sampler",
    "families",
    "family_of",
    "get_family",
    "make_family",
    "register_builtin_families",
    "register_family",
]
