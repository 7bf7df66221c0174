"""Agents for an env whose task is unknown: a probe of its env gives the descriptor.

::

    from meta_rl.agents import adapt, infer_task

    belief = infer_task(mapping, env, steps=200)   # what 200 steps of the env say
    model = adapt(mapping, env, infer=200)         # the prediction for that belief

The probe runs the mapping's prediction for the default task in ``env`` (seeded action
noise) and its task encoder (:mod:`meta_rl.mapping.inference`) reads the transitions; the
env's own task, if it has one, is never read. The probe's env steps are the belief's
``steps`` and a model's ``probe_steps``: count them in any budget.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from meta_rl.envs import family_of
from meta_rl.errors import CheckpointError, ConfigError, FamilyError
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.inference import Belief, run_probe
from meta_rl.training.inference import probe_params

from .adapt import MappingLike, _resolve_task, load_mapping
from .threads import torch_threads

PROBE_SEED = 1_000_003
"""Offset of the probe's seed from a call's ``seed`` (``adapt``, ``evaluate``, ``rollout``
and the benchmark): the probe's resets never repeat an evaluation episode's."""


def probe_seed(seed: int) -> int:
    """The seed of the probe that a call seeded ``seed`` runs."""
    return int(seed) + PROBE_SEED


def check_inference(trained: TrainedMapping) -> None:
    """Raise where ``trained`` has no task encoder, saying how to add one."""
    if trained.inference is None:
        raise CheckpointError(
            f"this {trained.family_name} mapping has no inference model, so it cannot infer "
            "a task from a probe; add one with `meta-rl add-inference CHECKPOINT` (or train "
            "with `meta-rl train --inference`), or give the task"
        )


def probe_env(env: gym.Env | VecEnv) -> gym.Env:
    """The single env a probe steps: ``env`` itself, or a DummyVecEnv's first env."""
    if isinstance(env, DummyVecEnv):
        return env.envs[0]
    if isinstance(env, VecEnv):
        raise ConfigError(
            f"a probe steps one env: pass a gym.Env or a DummyVecEnv, not a "
            f"{type(env).__name__} (unwrap VecNormalize or VecMonitor to the DummyVecEnv "
            "inside; a subprocess VecEnv cannot be probed)"
        )
    return env


def infer_task(
    mapping: MappingLike,
    env: gym.Env | VecEnv | None = None,
    *,
    steps: int,
    task: Mapping[str, float] | None = None,
    seed: int = 0,
    extrapolate: bool = False,
) -> Belief:
    """Probe ``env`` for ``steps`` env steps and infer its task's descriptor.

    Args:
        mapping: A mapping with an inference model (a checkpoint path, a shipped name, a
            :class:`~meta_rl.mapping.checkpoint.TrainedMapping`, or ``train(...)``'s result).
        env: The env to probe (its task is not read; it is reset by the probe). If omitted,
            an env of ``task`` is made, and the task is hidden from the model all the same.
        steps: The probe's env steps (at least the model's ``min_steps``).
        task: The task of the env to make, when no ``env`` is given.
        seed: The probe's seed: the same seed gives the same probe.
        extrapolate: Accept a ``task`` outside the family's bounds.

    Raises:
        CheckpointError: the mapping has no inference model.
        ConfigError: a probe too short for the model, or both or neither of env and task.
        FamilyError: an env of another family, or whose transitions are unlike the family's.
    """
    trained = load_mapping(mapping)
    check_inference(trained)
    assert trained.inference is not None
    if (env is None) == (task is None):
        raise ConfigError(
            "give either the env to probe or a task to make one (one of them, not both)"
        )
    if steps < trained.inference.min_steps:
        raise ConfigError(
            f"a probe of {steps} steps is too short for this inference model: probe for at "
            f"least {trained.inference.min_steps} steps (it was trained on "
            f"{trained.inference.min_steps} to {trained.inference.probe_steps})"
        )
    own = env is None
    if own:
        full = _resolve_task(trained.task_space, task, extrapolate, stacklevel=3)
        probed = trained.family.make(task=full, extrapolate=extrapolate)
    else:
        probed = probe_env(env)  # type: ignore[arg-type]
        _check_family(probed, trained)
    try:
        with torch_threads(1):
            transitions = run_probe(
                trained.spec,
                probe_params(trained),
                probed,
                steps=steps,
                noise=trained.inference.noise,
                seed=seed,
            )
            mean, std = trained.inference.belief(transitions)
    finally:
        if own:
            probed.close()
    return Belief(
        descriptor=mean.astype(np.float32),
        std=std.astype(np.float32),
        task=trained.task_space.from_descriptor(mean),  # clipped into the bounds
        steps=steps,
    )


def _check_family(env: gym.Env, trained: TrainedMapping) -> None:
    """The env's spaces fit the mapping's policy, and a family env is of its family."""
    try:
        trained.arch.check_env(env)
    except CheckpointError as err:
        name = trained.family_name
        raise FamilyError(f"cannot probe this env for a {name} mapping: {err}") from None
    try:
        base = family_of(env)
    except FamilyError:
        return  # a plain env with the family's spaces: the encoder's own check applies
    if base.task_space != trained.task_space:
        raise FamilyError(
            f"the env ({type(base).__name__}) is not of the mapping's family "
            f"{trained.family_name}: probe an env of that family"
        )
