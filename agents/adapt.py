"""Adaptation: a trained mapping plus an env (or a task) gives an ordinary SB3 model.

::

    from meta_rl.agents import adapt

    model = adapt("pendulum", task={"m": 1.6, "l": 1.3})  # zero-shot policy, warm critic
    model.learn(5_000)                                      # the fine-tune
    model.save("pendulum-m1.6.zip")

:func:`base_policy` gives the baseline to compare with: the same model carrying the
default-task expert (the mapping's base policy) instead of the prediction.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import partial
from typing import TYPE_CHECKING, Any, Union

import gymnasium as gym
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, unwrap_vec_normalize

from meta_rl.envs import Task, TaskSpace, family_of
from meta_rl.errors import CheckpointError, ConfigError, FamilyError, TaskError
from meta_rl.infra.sb3 import (
    ALGOS,
    OFF_POLICY_ALGOS,
    OFF_POLICY_HIDDEN,
    make_agent,
    make_off_policy_agent,
)
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.critic import BOX_CRITIC_OBJECTIVES

from .threads import DEFAULT_THREADS, check_threads, scope_learn, torch_threads
from .warm import WarmStart, search_descriptor, warm_start

if TYPE_CHECKING:
    from meta_rl.training.trainer import TrainResult

MappingLike = Union[TrainedMapping, "TrainResult", str, os.PathLike]
"""What every function here takes as a mapping: a :class:`TrainedMapping`, what
:func:`meta_rl.training.trainer.train` returns, a checkpoint path or a shipped name."""


class ExtrapolationWarning(UserWarning):
    """A task outside the family's bounds, or beyond a clamping (``td3``) mapping's training
    region: the mapping was never trained there."""


def load_mapping(mapping: MappingLike) -> TrainedMapping:
    """A :class:`TrainedMapping` from itself, a training's result (``train(config)``), a
    checkpoint path or a shipped name.

    Raises:
        CheckpointError: no such file or shipped name, a bad checkpoint, or an object of
            another type.
    """
    from meta_rl.training.trainer import TrainResult  # the trainer is heavy to import

    if isinstance(mapping, TrainedMapping):
        return mapping
    if isinstance(mapping, TrainResult):
        return mapping.mapping
    if isinstance(mapping, (str, os.PathLike)):
        return TrainedMapping.load(mapping)
    hint = ""
    if isinstance(mapping, tuple) and mapping and isinstance(mapping[0], TrainedMapping):
        hint = " (this tuple holds one: pass its first item)"
    raise CheckpointError(
        "a mapping is a TrainedMapping, the result of train(...), a checkpoint path or a "
        f"shipped mapping's name, not a {type(mapping).__name__}{hint}"
    )


def resolve_task(
    space: TaskSpace, task: Mapping[str, float] | None, *, extrapolate: bool = False
) -> Task:
    """Validate ``task`` for a mapping of ``space``; out-of-bounds values only with
    ``extrapolate``, which warns (:class:`ExtrapolationWarning`).

    Raises:
        ValueError: a bad task, or one outside the bounds without ``extrapolate``.
    """
    return _resolve_task(space, task, extrapolate, stacklevel=4)


def _resolve_task(
    space: TaskSpace, task: Mapping[str, float] | None, extrapolate: bool, *, stacklevel: int
) -> Task:
    """:func:`resolve_task`, whose warning names the frame ``stacklevel`` up (3: the caller
    of this function's caller)."""
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
        stacklevel=stacklevel,
    )
    return full


def _warn_if_clamped(trained: TrainedMapping, task: Task, *, stacklevel: int = 3) -> None:
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
            stacklevel=stacklevel,
        )


def adapt(
    mapping: MappingLike,
    env: gym.Env | VecEnv | None = None,
    *,
    task: Mapping[str, float] | None = None,
    algo: str | None = None,
    n_envs: int | None = None,
    seed: int = 0,
    extrapolate: bool = False,
    infer: int | None = None,
    threads: int | None = DEFAULT_THREADS,
    **overrides: Any,
) -> BaseAlgorithm:
    """An SB3 model (PPO, A2C, SAC or TD3) whose policy carries the mapping's prediction
    for the task, with a warm critic, ready for a fine-tune (``model.learn(steps)``).

    With ``infer=N`` the task is not read: a probe of ``N`` env steps of ``env`` (or of an
    env of ``task``) infers it (:func:`~meta_rl.agents.infer.infer_task`, seeded
    ``probe_seed(seed)``); the model's ``probe_steps`` is ``N`` and its ``belief`` what
    the probe found.

    * PPO and A2C carry the predicted ``MlpPolicy`` exactly, critic included, with the
      recipe's ``finetune`` settings (smaller learning rate and clip range than from
      scratch). Before any ``learn`` the model is the zero-shot prediction.
    * SAC and TD3 (Box actions) carry a conversion of it, fitted on ``warm_steps`` env
      steps of the prediction that this call takes (``model.warm_steps``; count them in
      the fine-tune's budget; PPO's and A2C's is 0), and the mapping's own critic where
      a ``td3`` mapping kept one, else a critic warmed up on those steps
      (:mod:`meta_rl.agents.warm`). Settings: the recipe's ``finetune_sac`` /
      ``finetune_td3``. With ``search=N`` the prediction is the best of the task's own and
      ``N`` for nearby descriptors, one episode each on the env
      (:func:`~meta_rl.agents.warm.search_descriptor`; ``model.search_descriptor``, else
      ``None``); those steps count in ``model.warm_steps`` too.

    The optimizers are fresh; any setting can be overridden by keyword.

    Args:
        mapping: A trained mapping, the result of ``train(...)``, a checkpoint path, or a
            shipped name (``"pendulum"``).
        env: An env of the mapping's family (any wrappers; its current task is used), or a
            VecEnv of such envs all on one task. If omitted, ``n_envs`` envs of ``task``.
        task: The task, when no ``env`` is given (missing features take defaults).
        algo: ``"ppo"``, ``"a2c"``, or for Box actions ``"sac"`` or ``"td3"``; default:
            the recipe's ``finetune_algo``, the family's choice on validation tasks.
        n_envs: Parallel envs when built from ``task`` (default: the recipe's for PPO and
            A2C, one for SAC and TD3).
        seed: Seed of the model and envs.
        extrapolate: Accept a task outside the family's bounds (warns).
        infer: Probe steps that infer the task (the mapping needs an inference model);
            ``None``: the env's task, or ``task``.
        threads: Torch threads while the model is built and while its ``learn`` runs; the
            process's own count is set again afterwards (:mod:`meta_rl.agents.threads`).
            ``None`` leaves torch's setting alone.
        **overrides: Algorithm settings replacing the recipe's (``learning_rate=...``).

    Raises:
        ValueError: an env of another family or with other spaces, a bad task, or a task
            out of bounds without ``extrapolate``, an algorithm that does not fit the
            action space (each a :mod:`meta_rl.errors` type).
    """
    return _model(
        mapping,
        env,
        lambda trained, descriptor: trained.predict_descriptor(descriptor),
        searchable=True,
        task=task,
        algo=algo,
        n_envs=n_envs,
        seed=seed,
        extrapolate=extrapolate,
        threads=threads,
        overrides=overrides,
        infer=infer,
    )


def base_policy(
    mapping: MappingLike,
    env: gym.Env | VecEnv | None = None,
    *,
    task: Mapping[str, float] | None = None,
    algo: str | None = None,
    n_envs: int | None = None,
    seed: int = 0,
    extrapolate: bool = False,
    threads: int | None = DEFAULT_THREADS,
    **overrides: Any,
) -> BaseAlgorithm:
    """The baseline of :func:`adapt`: the same SB3 model, carrying the mapping's base policy
    (the default-task expert, actor and critic) instead of the prediction for the task.

    Evaluated as it is, it is what a policy trained on the default task does on this one;
    after ``learn(steps)``, it is the fine-tune that starts from that expert, with the
    settings :func:`adapt`'s fine-tune has. The arguments are :func:`adapt`'s.
    """
    return _model(
        mapping,
        env,
        lambda trained, descriptor: trained.base_params,
        task=task,
        algo=algo,
        n_envs=n_envs,
        seed=seed,
        extrapolate=extrapolate,
        threads=threads,
        overrides=overrides,
    )


def _model(
    mapping: MappingLike,
    env: gym.Env | VecEnv | None,
    params_of: Callable[[TrainedMapping, torch.Tensor], torch.Tensor],
    *,
    task: Mapping[str, float] | None,
    algo: str,
    n_envs: int | None,
    seed: int,
    extrapolate: bool,
    threads: int | None,
    overrides: Mapping[str, Any],
    infer: int | None = None,
    searchable: bool = False,
) -> BaseAlgorithm:
    """An SB3 model of the mapping's architecture and fine-tune settings, on ``env`` or on
    envs of ``task``, carrying ``params_of(mapping, descriptor)``: the task's descriptor,
    or with ``infer`` the one a probe of that many steps infers. ``searchable``: the
    parameters depend on the descriptor, so an off-policy warm start's ``search`` may
    move it (not for the base policy)."""
    check_threads(threads)
    trained = load_mapping(mapping)
    algo = check_algo(trained, algo)
    if infer is not None:
        return _inferred_model(
            trained, env, params_of, task, algo, n_envs, seed, extrapolate, threads, overrides,
            infer, searchable,
        )  # fmt: skip
    if env is not None:
        if task is not None:
            raise ConfigError("give either env or task, not both")
        full = _resolve_task(trained.task_space, _task_of(env, trained), extrapolate, stacklevel=4)
        trained.arch.check_env(env)  # type: ignore[arg-type]
    else:
        full = _resolve_task(trained.task_space, task, extrapolate, stacklevel=4)
        env = _task_envs(trained, full, algo, n_envs, seed, extrapolate)
    _warn_if_clamped(trained, full, stacklevel=4)
    descriptor = torch.as_tensor(trained.descriptor(full, extrapolate=True))
    try:
        params = params_of(trained, descriptor)
    except TaskError:
        trained.predict(full, extrapolate=True)  # raises predict's message: what to do
        raise
    search = partial(params_of, trained) if searchable else None
    return _build(trained, env, params, descriptor, algo, seed, threads, overrides, search)


def _task_envs(
    trained: TrainedMapping,
    task: Task,
    algo: str,
    n_envs: int | None,
    seed: int,
    extrapolate: bool,
) -> VecEnv:
    """The fine-tune's envs of ``task``: ``n_envs``, else one for SAC and TD3 and the
    recipe's count for PPO and A2C."""
    return make_vec_env(  # a constructor, not the id (no render_mode, as in make_agent)
        partial(trained.family.make, task=task, extrapolate=extrapolate),
        n_envs=n_envs or (1 if algo in OFF_POLICY_ALGOS else trained.recipe.finetune_n_envs),
        seed=seed,
    )


def _inferred_model(
    trained: TrainedMapping,
    env: gym.Env | VecEnv | None,
    params_of: Callable[[TrainedMapping, torch.Tensor], torch.Tensor],
    task: Mapping[str, float] | None,
    algo: str,
    n_envs: int | None,
    seed: int,
    extrapolate: bool,
    threads: int | None,
    overrides: Mapping[str, Any],
    steps: int,
    searchable: bool,
) -> BaseAlgorithm:
    """:func:`_model` for a task a probe infers (the env's task is not read)."""
    from .infer import _check_family, infer_task, probe_env, probe_seed

    if env is not None:
        if task is not None:
            raise ConfigError("give either env or task, not both")
        _check_family(probe_env(env), trained)
        if not isinstance(env, VecEnv):
            env = DummyVecEnv([lambda: env])
    else:
        full = _resolve_task(trained.task_space, task, extrapolate, stacklevel=5)
        env = _task_envs(trained, full, algo, n_envs, seed, extrapolate)
    belief = infer_task(trained, env, steps=steps, seed=probe_seed(seed))
    descriptor = torch.as_tensor(belief.descriptor)
    search = partial(params_of, trained) if searchable else None
    model = _build(
        trained, env, params_of(trained, descriptor), descriptor, algo, seed, threads, overrides,
        search,
    )  # fmt: skip
    model.probe_steps = belief.steps  # type: ignore[attr-defined]
    model.belief = belief  # type: ignore[attr-defined]
    return model


def _build(
    trained: TrainedMapping,
    env: VecEnv,
    params: torch.Tensor,
    descriptor: torch.Tensor,
    algo: str,
    seed: int,
    threads: int | None,
    overrides: Mapping[str, Any],
    search: Callable[[torch.Tensor], torch.Tensor] | None,
) -> BaseAlgorithm:
    """The SB3 model on ``env`` carrying ``params``; an off-policy one's critic folded for
    ``descriptor``, its warm start free to search around ``descriptor`` with ``search``
    (descriptor to parameters) where one is given."""
    with torch_threads(threads):
        if algo in OFF_POLICY_ALGOS:
            model = _off_policy_model(
                trained, descriptor, env, params, algo, seed, overrides, search
            )
        else:
            warm_only = sorted(set(overrides) & {f.name for f in fields(WarmStart)})
            if warm_only:
                raise ConfigError(
                    f"{', '.join(warm_only)}: settings of an off-policy fine-tune's warm start "
                    f"(algo='sac' or 'td3'), not of {algo.upper()}"
                )
            model = make_agent(
                trained.family,
                None,
                trained.arch,
                {**trained.recipe.finetune, **overrides},
                n_envs=0,
                seed=seed,
                params=params,
                algo=algo,
                spec=trained.spec,
                env=env,
            )
            model.warm_steps = 0  # type: ignore[attr-defined]  # nothing ran before learn
            model.search_descriptor = None  # type: ignore[attr-defined]  # no search
    model.probe_steps = 0  # type: ignore[attr-defined]  # the task was given
    return scope_learn(model, threads)


def _off_policy_model(
    trained: TrainedMapping,
    descriptor: torch.Tensor,
    env: VecEnv,
    params: torch.Tensor,
    algo: str,
    seed: int,
    overrides: Mapping[str, Any],
    search: Callable[[torch.Tensor], torch.Tensor] | None,
) -> BaseAlgorithm:
    """SB3's SAC or TD3 on ``env`` carrying ``params`` and a warm critic
    (:mod:`meta_rl.agents.warm`); with ``search`` and the warm start's ``search`` setting,
    ``params`` are those of the best descriptor found around ``descriptor``
    (:func:`~meta_rl.agents.warm.search_descriptor`), whose steps count in ``warm_steps``."""
    if unwrap_vec_normalize(env) is not None:
        raise ConfigError(
            "an off-policy fine-tune's warm start acts on the env's own observations and "
            "rewards: give the env without VecNormalize"
        )
    warm, settings = WarmStart.split({**trained.recipe.off_policy_finetune(algo), **overrides})
    critic = trained.critic
    if critic is not None and critic.objective not in BOX_CRITIC_OBJECTIVES:
        critic = None
    settings.setdefault("gamma", critic.gamma if critic is not None else 0.99)
    if critic is not None and settings["gamma"] != critic.gamma:
        critic = None  # a critic of another discount would only mislead: warm up instead
    model = make_off_policy_agent(
        env,
        algo,
        trained.arch,
        settings,
        seed=seed,
        qf=critic.hidden if critic is not None else OFF_POLICY_HIDDEN,
    )
    searched, chosen = 0, None
    if search is not None and warm.search:
        chosen, params, searched = search_descriptor(
            model, trained.spec, search, descriptor, warm, seed=seed
        )
    model.search_descriptor = chosen  # type: ignore[attr-defined]  # None: no search ran
    model.warm_steps = searched + warm_start(  # type: ignore[attr-defined]
        model,
        trained.spec,
        params,
        warm,
        critic=critic,
        descriptor=trained.input_descriptor(descriptor).numpy(),
        seed=seed,
    )
    return model


def algos_for(action_kind: str) -> list[str]:
    """The fine-tune algorithms for a policy of ``action_kind`` (``"box"``, ``"discrete"``).

    SB3's DQN is not among them: its policy is the argmax of its Q-network, and the
    prediction is a policy, not a Q-function. A ``sacd`` mapping's critic could be folded
    into DQN's network as ``td3``'s is into SAC's, but its greedy policy is not the
    predicted one, so the fine-tune would not start from the prediction."""
    return sorted(ALGOS) + (sorted(OFF_POLICY_ALGOS) if action_kind == "box" else [])


def check_algo(trained: TrainedMapping, algo: str | None) -> str:
    """``algo``, or the recipe's default fine-tune where ``None``.

    Raises:
        ConfigError: an algorithm that does not fit the mapping's action space (the
            message names those that do).
    """
    algo = trained.recipe.finetune_algo if algo is None else algo
    offered = algos_for(trained.arch.action_kind)
    if algo not in offered:
        kind = "continuous (Box)" if trained.arch.action_kind == "box" else "discrete"
        why = " (SAC and TD3 need Box actions)" if algo in OFF_POLICY_ALGOS else ""
        raise ConfigError(
            f"cannot fine-tune with {algo!r}: {trained.family_name}'s actions are {kind}"
            f"{why}; use one of {', '.join(offered)}"
        )
    return algo


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
