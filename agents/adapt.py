"""Adaptation: a trained mapping plus an env (or a task) gives an ordinary SB3 model.

::

    from meta_rl.agents import adapt

    model = adapt("pendulum", task={"m": 1.6, "l": 1.3})  # zero-shot policy, warm critic
    model.learn(5_000)                                      # the fine-tune
    model.save("pendulum-m1.6.zip")
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from meta_rl.envs import Task, TaskSpace, family_of
from meta_rl.errors import ConfigError, FamilyError, TaskError
from meta_rl.infra.sb3 import make_agent
from meta_rl.mapping.checkpoint import TrainedMapping


class ExtrapolationWarning(UserWarning):
    """A task outside the family's bounds, or beyond a clamping (``td3``) mapping's training
    region: the mapping was never trained there."""


def load_mapping(mapping: TrainedMapping | str | os.PathLike) -> TrainedMapping:
    """A :class:`TrainedMapping` from itself, a checkpoint path or a shipped name."""
    if isinstance(mapping, TrainedMapping):
        return mapping
    return TrainedMapping.load(mapping)


def resolve_task(
    space: TaskSpace, task: Mapping[str, float] | None, *, extrapolate: bool = False
) -> Task:
    """Validate ``task`` for a mapping of ``space``; out-of-bounds values only with
    ``extrapolate``, which warns (:class:`ExtrapolationWarning`).

    Raises:
        ValueError: a bad task, or one outside the bounds without ``extrapolate``.
    """
    full = space.validate(task, extrapolate=True)  # every error but "out of bounds"
    if space.contains(full):
        return full
    if not extrapolate:
        try:
            space.validate(full)
        except ValueError as err:
            raise TaskError(
                f"{err} (or pass extrapolate=True / --extrapolate to use the mapping "
                "outside its training bounds)"
            ) from None
    warnings.warn(
        f"task {full} is outside the bounds the mapping was trained on "
        f"({space.describe_bounds()}): this is extrapolation (extrapolate=True)",
        ExtrapolationWarning,
        stacklevel=3,
    )
    return full


def _warn_if_clamped(trained: TrainedMapping, task: Task) -> None:
    """Say so where ``trained`` predicts for another task than ``task``: a clamping (``td3``)
    mapping and a task beyond its training region."""
    if not trained.clamps:
        return
    d = torch.as_tensor(trained.descriptor(task, extrapolate=True))
    low, high = trained.training_region()
    if bool(((d < low) | (d > high)).any()):
        warnings.warn(
            f"task {task} lies beyond the region this {trained.objective} mapping was trained "
            "on; it predicts the policy of the nearest task inside that region "
            "(TrainedMapping.predict(..., clamp=False) gives its own extrapolation)",
            ExtrapolationWarning,
            stacklevel=3,
        )


def adapt(
    mapping: TrainedMapping | str | os.PathLike,
    env: gym.Env | VecEnv | None = None,
    *,
    task: Mapping[str, float] | None = None,
    algo: str = "ppo",
    n_envs: int | None = None,
    seed: int = 0,
    extrapolate: bool = False,
    **overrides: Any,
) -> BaseAlgorithm:
    """An SB3 PPO or A2C model whose policy carries the mapping's prediction for the task.

    The critic is predicted too, so a fine-tune (``model.learn(steps)``) starts warm; the
    optimizer is fresh, and the algorithm settings are the family recipe's ``finetune``
    ones (smaller learning rate and clip range than from scratch), overridable by keyword.

    Args:
        mapping: A trained mapping, a checkpoint path, or a shipped name (``"pendulum"``).
        env: An env of the mapping's family (any wrappers; its current task is used), or a
            VecEnv of such envs all on one task. If omitted, ``n_envs`` envs of ``task``.
        task: The task, when no ``env`` is given (missing features take defaults).
        algo: ``"ppo"`` or ``"a2c"``.
        n_envs: Parallel envs when built from ``task`` (default: the recipe's).
        seed: Seed of the model and envs.
        extrapolate: Accept a task outside the family's bounds (warns).
        **overrides: Algorithm settings replacing the recipe's (``learning_rate=...``).

    Raises:
        ValueError: an env of another family or with other spaces, a bad task, or a task
            out of bounds without ``extrapolate``.
    """
    trained = load_mapping(mapping)
    family = trained.family
    if env is not None:
        if task is not None:
            raise ConfigError("give either env or task, not both")
        full = resolve_task(trained.task_space, _task_of(env, trained), extrapolate=extrapolate)
        trained.arch.check_env(env)  # type: ignore[arg-type]
    else:
        full = resolve_task(trained.task_space, task, extrapolate=extrapolate)
        env = make_vec_env(
            family.id,
            n_envs=n_envs or trained.recipe.finetune_n_envs,
            seed=seed,
            env_kwargs={"task": full, "extrapolate": extrapolate},
        )
    _warn_if_clamped(trained, full)
    params = trained.predict(full, extrapolate=True)
    settings = {**trained.recipe.finetune, **overrides}
    return make_agent(
        family,
        full,
        trained.arch,
        settings,
        n_envs=0,
        seed=seed,
        params=params,
        algo=algo,
        spec=trained.spec,
        env=env,
    )


def _task_of(env: gym.Env | VecEnv, trained: TrainedMapping) -> Task:
    """The one task of an env, or of every env of a VecEnv."""
    if isinstance(env, VecEnv):
        try:
            spaces = env.get_attr("task_space")
            tasks = env.get_attr("task")
        except AttributeError:
            raise FamilyError(
                f"the VecEnv's envs are not {trained.family_name} family envs; make them with "
                f"gym.make('meta_rl/{trained.family_name}-v0', task=...)"
            ) from None
        if any(t != tasks[0] for t in tasks):
            raise FamilyError("the VecEnv's envs hold different tasks; adapt to one task at a time")
        space, task = spaces[0], tasks[0]
        name = "VecEnv"
    else:
        base = family_of(env)
        space, task, name = base.task_space, base.task, type(base).__name__
    if space != trained.task_space:
        raise FamilyError(
            f"the env ({name}) is not of the mapping's family {trained.family_name}: "
            "its task space differs"
        )
    return task
