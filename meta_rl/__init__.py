"""meta-rl: policies ready for a new environment at once.

A mapping network turns a task descriptor into the parameters of a Stable-Baselines3 policy;
a short policy-gradient fine-tune finishes the job. Importing this package registers every
built-in family as a Gymnasium id ``meta_rl/<Family>-v0``.
"""

from __future__ import annotations

from meta_rl import envs  # noqa: F401  (registers the families)

__version__ = "0.1.0"
