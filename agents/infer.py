"""Agents for an env whose task is unknown: a probe of its env gives the descriptor.

::

    from meta_rl.agents import adapt, infer_task

    belief = infer_task(mapping, env, steps=200)   # what 200 steps of the env say
    model = adapt(mapping, env, infer=200)         # the prediction for that belief

The probe runs the mapping's prediction for the default task in ``env`` (seeded action
noise) and its task encoder (:mod:`meta_rl.mapping.inference`) reads the transitions; the
env's own task, if it has one, is never read. The probe's env steps are the belief's
``steps`` and a model's ``probe_steps``: count them in any budget. With no probe at all,
:class:`InferringAgent` acts from the first step and infers the task from its own
transitions as they come.
"""

from __future__ import annotations

from collections import deque
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
    return _belief(trained, mean, std, steps)


def _belief(trained: TrainedMapping, mean: np.ndarray, std: np.ndarray, steps: int) -> Belief:
    """The belief of an inference's mean and std over ``steps`` transitions."""
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


class InferringAgent:
    """Acts in an env whose task is unknown, and infers the task from its own transitions
    as they accumulate: no probe comes first.

    It starts with the prediction for the default task (the probe's policy, without its
    noise). Once it has seen the inference model's ``min_steps`` transitions, and then
    every ``every`` steps, it infers the descriptor from the latest ``window`` transitions
    and acts with the prediction for that belief::

        agent = InferringAgent("pendulum", env, every=20)
        obs, _ = env.reset(seed=0)
        done = False
        while not done:
            action = agent.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            agent.observe(obs, action, reward, next_obs)
            obs, done = next_obs, terminated or truncated

    or ``agent.run_episode(seed=0)``. The evidence carries over from one episode to the
    next, since an env's task stays what it is when the env resets (an episode that ends
    before ``min_steps``, as a pole falls, still counts): do not call :meth:`forget` at
    each reset, only where the env's task changes.

    Args:
        mapping: A mapping with an inference model (a path, a shipped name or a
            :class:`~meta_rl.mapping.checkpoint.TrainedMapping`).
        env: The single (not vectorised) env it acts in: its spaces and family are
            checked, its task is not read.
        every: Env steps between two inferences, after the first.
        window: The most recent transitions that an inference reads (at least the
            model's ``min_steps``).

    Attributes:
        belief: The latest :class:`~meta_rl.mapping.inference.Belief` (``None`` until
            ``min_steps`` transitions were seen). Its ``std`` is per feature, in descriptor
            units, in the order of ``task_space.names``.
        inferences: How many times the task was inferred since the agent began or forgot.

    Raises:
        CheckpointError: the mapping has no inference model.
        ConfigError: ``every`` or ``window`` is not a positive int, a window shorter than
            ``min_steps``, or a vectorised env.
        FamilyError: an env of another family or other spaces. :meth:`observe` raises it
            too where the transitions turn out unlike the family's.
    """

    def __init__(
        self, mapping: MappingLike, env: gym.Env, *, every: int = 20, window: int = 1000
    ) -> None:
        from meta_rl.evaluation import ParamsPolicy  # evaluation imports this package

        self.trained = load_mapping(mapping)
        check_inference(self.trained)
        assert self.trained.inference is not None
        for name, value in (("every", every), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int (env steps), got {value!r}")
        least = self.trained.inference.min_steps
        if window < least:
            raise ConfigError(f"window must hold the inference model's {least} steps at least")
        self.every, self.window = every, window
        if isinstance(env, VecEnv):
            raise ConfigError(
                f"an InferringAgent acts in one env: pass a gym.Env, not a "
                f"{type(env).__name__} (a vectorised env resets on its own, and the "
                "transition across that reset would mislead the inference)"
            )
        self.env = env
        _check_family(self.env, self.trained)
        space = self.env.action_space
        self._n_actions = int(space.n) if isinstance(space, gym.spaces.Discrete) else None
        self._make_policy = lambda params: ParamsPolicy(self.trained.spec, params, space)
        self._start = self._make_policy(probe_params(self.trained))
        self.forget()

    def forget(self) -> None:
        """Forget every transition, for an env whose task has changed: act with the
        default task's prediction again. (Not at each episode's start: the evidence of
        the env's earlier episodes is what the agent knows about its task.)"""
        self._rows: deque[np.ndarray] = deque(maxlen=self.window)
        self._seen = 0
        self._policy = self._start
        self.belief: Belief | None = None
        self.inferences = 0

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        """The current policy's deterministic action for one observation (the action
        itself, not SB3's ``(action, state)`` pair)."""
        return self._policy(obs)

    def observe(
        self, obs: np.ndarray, action: np.ndarray | int, reward: float, next_obs: np.ndarray
    ) -> None:
        """Record one transition (``next_obs``: the step's, also when the episode ended),
        and infer the task again when its turn has come."""
        from meta_rl.mapping.inference import transition

        self._rows.append(transition(obs, action, float(reward), next_obs, self._n_actions))
        self._seen += 1
        inference = self.trained.inference
        assert inference is not None
        n = self._seen
        if n < inference.min_steps or (n - inference.min_steps) % self.every:
            return
        with torch_threads(1):
            mean, std = inference.belief(np.stack(self._rows))
            params = self.trained.predict_descriptor(mean)
        self.belief = _belief(self.trained, mean, std, len(self._rows))
        self._policy = self._make_policy(params)
        self.inferences += 1

    def run_episode(self, seed: int | None = None) -> float:
        """One episode in the env (reset with ``seed``), inferring as it goes; its return."""
        obs, _ = self.env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = self.act(obs)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            self.observe(obs, action, float(reward), next_obs)
            total += float(reward)
            obs, done = next_obs, bool(terminated or truncated)
        return total
