"""Seeded evaluation on a task: the zero-shot prediction, the base policy or an SB3 model.

::

    from meta_rl.agents import adapt, evaluate

    task = {"m": 1.6, "l": 1.3}
    print(evaluate("pendulum", task, policy="base"))   # the default-task expert
    print(evaluate("pendulum", task))                  # the zero-shot prediction
    model = adapt("pendulum", task=task)
    model.learn(5_000)
    print(evaluate("pendulum", task, policy=model))    # after the fine-tune

Every call runs the same episodes (reset seeds ``seed, seed + 1, ...``) with the
deterministic policy, so the numbers differ only where the policies do, and
``evaluate(mapping, task, episodes=n, seed=s)`` gives what
``meta-rl evaluate MAPPING --task ... --episodes n --seed s`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from meta_rl.errors import ConfigError
from meta_rl.evaluation import ParamsPolicy, run_episodes, summarise
from meta_rl.mapping.inference import Belief
from meta_rl.mapping.policy import plain_params

from .adapt import MappingLike, _resolve_task, _warn_if_clamped, load_mapping
from .threads import torch_threads

POLICIES = ("zero-shot", "base")


@dataclass(frozen=True)
class Evaluation:
    """Undiscounted returns of seeded episodes: their ``mean``, ``std`` (population, as
    ``meta-rl evaluate`` and SB3's ``evaluate_policy`` give it) and each one."""

    mean: float
    std: float
    returns: tuple[float, ...]
    belief: Belief | None = field(default=None, compare=False)
    """With ``infer``: what the probe inferred (its ``steps`` are the probe's env steps)."""

    @property
    def episodes(self) -> int:
        return len(self.returns)

    def __str__(self) -> str:
        return f"{self.mean:.1f} +- {self.std:.1f} over {self.episodes} episodes"


def evaluate(
    mapping: MappingLike,
    task: Mapping[str, float] | None = None,
    *,
    policy: str | BaseAlgorithm = "zero-shot",
    episodes: int = 10,
    seed: int = 0,
    extrapolate: bool = False,
    infer: int | None = None,
) -> Evaluation:
    """Returns of the deterministic policy on ``task``, over seeded episodes.

    Args:
        mapping: A trained mapping, the result of ``train(...)``, a checkpoint path or a
            shipped name (``"pendulum"``).
        task: Feature values (missing ones take defaults).
        policy: ``"zero-shot"``, the mapping's prediction for ``task`` (what
            ``meta-rl evaluate`` scores); ``"base"``, the default-task expert; or an SB3
            model of the mapping's policy architecture, such as :func:`adapt` and
            :func:`base_policy` return, before or after ``learn`` (an SAC or TD3 model acts
            with its own deterministic actor).
        episodes: Number of episodes.
        seed: Reset seed of the first episode; episode ``i`` is reset with ``seed + i``.
        extrapolate: Accept a task outside the family's bounds (warns).
        infer: Probe steps: the zero-shot prediction is then for the task that a probe of
            the env infers (:func:`~meta_rl.agents.infer.infer_task`, seeded
            ``probe_seed(seed)``), not for ``task``, which only makes the env. The probe's
            steps are the result's ``belief.steps``.

    Raises:
        ValueError: a bad task, policy or episode count, or a model of another
            architecture (each a :mod:`meta_rl.errors` type).
    """
    trained = load_mapping(mapping)
    full = _resolve_task(trained.task_space, task, extrapolate, stacklevel=3)
    belief = None
    if infer is not None and policy != "zero-shot":
        raise ConfigError("infer applies to the zero-shot prediction (policy='zero-shot')")
    # One thread, as the command line runs: the same float sums, the same returns.
    with torch_threads(1):
        params: torch.Tensor | None = None
        if infer is not None:
            from .infer import infer_task, probe_seed

            belief = infer_task(
                trained, task=full, steps=infer, seed=probe_seed(seed), extrapolate=True
            )
            params = trained.predict_descriptor(belief.descriptor)
        elif isinstance(policy, OffPolicyAlgorithm):
            model = policy  # SAC or TD3: its own actor, deterministic
        elif isinstance(policy, BaseAlgorithm):
            params = plain_params(policy, trained.spec)
        elif policy == "zero-shot":
            _warn_if_clamped(trained, full, stacklevel=3)
            params = trained.predict(full, extrapolate=True)
        elif policy == "base":
            params = trained.base_params
        else:
            raise ConfigError(
                f"policy must be one of {', '.join(map(repr, POLICIES))} or an SB3 model, "
                f"got {policy!r}"
            )
        env = trained.family.make(task=full, extrapolate=extrapolate)
        try:
            if params is None:
                actor = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
            else:
                actor = ParamsPolicy(trained.spec, params, env.action_space)
            returns = run_episodes(env, actor, episodes=episodes, seed=seed)
        finally:
            env.close()
    summary = summarise(returns)  # as `meta-rl evaluate` summarises them
    return Evaluation(
        float(summary["return_mean"]),  # type: ignore[arg-type]
        float(summary["return_std"]),  # type: ignore[arg-type]
        tuple(returns),
        belief,
    )
