"""The one place that builds Stable-Baselines3 models: a PPO or A2C whose ``MlpPolicy`` has
a given architecture, optionally carrying flat predicted parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize

from meta_rl.envs import Family
from meta_rl.errors import ConfigError
from meta_rl.mapping.policy import PolicyArch, PolicySpec

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C}
A2C_KEYS = {"n_steps", "gamma", "gae_lambda", "learning_rate", "ent_coef", "vf_coef"}


def make_agent(
    family: Family,
    task: Mapping[str, float] | None,
    arch: PolicyArch,
    settings: Mapping[str, Any],
    *,
    n_envs: int,
    seed: int,
    params: torch.Tensor | None = None,
    algo: str = "ppo",
    spec: PolicySpec | None = None,
    env: gym.Env | None = None,
) -> BaseAlgorithm:
    """An SB3 PPO (or A2C) on ``task`` whose ``MlpPolicy`` has architecture ``arch``.

    With ``params``, the policy carries those parameters and its optimizer is rebuilt
    afterwards, so no optimizer state of other parameters leaks into the fine-tune.

    Args:
        family: The family.
        task: The task (validated); ignored when ``env`` is given.
        arch: Policy architecture.
        settings: Algorithm keyword arguments (``n_steps``, ``learning_rate``,
            ``verbose``, ``tensorboard_log``, ...; without the last two the model logs
            nothing, see :func:`silence`), and two more for runs from scratch:
            ``normalize`` (wrap the env in ``VecNormalize``) and ``policy_kwargs`` (merged
            over ``arch``'s, e.g. gSDE's ``log_std_init``). Read such a model's
            parameters with :func:`meta_rl.policy_spec.plain_params`.
        n_envs: Parallel envs (a ``DummyVecEnv``).
        seed: Seed of the algorithm and the envs.
        params: Flat policy parameters to start from.
        algo: ``"ppo"`` or ``"a2c"``.
        spec: The spec of ``arch`` (built if not given).
        env: An env (or VecEnv) to train on instead of ``n_envs`` copies of ``task``.
    """
    if algo not in ALGOS:
        raise ConfigError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    kwargs = dict(settings)
    verbose = int(kwargs.pop("verbose", 0))
    normalize = bool(kwargs.pop("normalize", False))
    policy_kwargs = {**arch.policy_kwargs(), **kwargs.pop("policy_kwargs", {})}
    if params is not None and (normalize or kwargs.get("use_sde")):
        raise ConfigError(
            "a warm start needs plain PPO settings: these use gSDE or VecNormalize, which "
            "the flat parameters cannot carry (use the recipe's `ppo`, not `scratch_ppo`)"
        )
    if env is None:
        task = family.task_space.validate(task)
        env = make_vec_env(family.id, n_envs=n_envs, seed=seed, env_kwargs={"task": task})
    if normalize:
        env = VecNormalize(env, gamma=float(kwargs.get("gamma", 0.99)))
    if algo == "a2c":
        kwargs = {k: v for k, v in kwargs.items() if k in A2C_KEYS}
    model = ALGOS[algo](
        "MlpPolicy",
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        verbose=verbose,
        **kwargs,
    )
    if not verbose and kwargs.get("tensorboard_log") is None:
        silence(model)  # nothing asked for logs: SB3 would still make a folder per learn
    if params is not None:
        spec = spec or PolicySpec(arch)
        spec.load_into(model.policy, params)
        rebuild_optimizer(model)
    return model


def silence(model: BaseAlgorithm) -> BaseAlgorithm:
    """Give ``model`` a logger with no outputs. SB3's default logger, even at verbose 0,
    makes an empty ``SB3-<time>`` folder in the temp dir at every ``learn``: thousands of
    them over a benchmark. :func:`make_agent` does this unless ``verbose`` or
    ``tensorboard_log`` is among the settings; to log from a silenced model, give it a
    logger: ``model.set_logger(stable_baselines3.common.logger.configure(folder, ["stdout"]))``."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def rebuild_optimizer(model: BaseAlgorithm) -> None:
    """A fresh optimizer over the policy's current parameters (after loading new ones)."""
    policy = model.policy
    lr = model.lr_schedule(1.0)
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr, **policy.optimizer_kwargs)
