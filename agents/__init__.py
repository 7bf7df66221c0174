"""Everything that builds Stable-Baselines3 agents (installed as ``meta_rl.agents``).

``adapt`` (the prediction for a task, to fine-tune), ``base_policy`` (the default-task
expert, the baseline), ``evaluate`` (seeded returns of either, or of any SB3 model of the
mapping's architecture), ``infer_task`` (the task of an env, from a short probe),
``InferringAgent`` (acts while it infers the task from its own transitions) and
``torch_threads`` (the thread count their ``learn`` runs on, for a block of your own).
"""

from __future__ import annotations

from meta_rl.infra.divergence import DivergenceGuard, DivergenceWarning

from .adapt import ExtrapolationWarning, adapt, base_policy, load_mapping, resolve_task
from .infer import InferringAgent, infer_task
from .scores import Evaluation, evaluate
from .threads import torch_threads
from .vec_env import FamilyVecEnv

__all__ = [
    "DivergenceGuard",
    "DivergenceWarning",
    "Evaluation",
    "ExtrapolationWarning",
    "FamilyVecEnv",
    "InferringAgent",
    "adapt",
    "base_policy",
    "evaluate",
    "infer_task",
    "load_mapping",
    "resolve_task",
    "torch_threads",
]
