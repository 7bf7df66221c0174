"""Evaluation: episode returns of a policy on a task, and the normalised score."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from meta_rl.envs import Family
from meta_rl.errors import ConfigError
from meta_rl.mapping.policy import PolicySpec, build_policy, plain_params

Policy = Callable[[np.ndarray], np.ndarray | int]
"""Maps one observation to one action."""


def run_episodes(
    env: gym.Env,
    policy: Policy | None,
    *,
    episodes: int,
    seed: int = 0,
    lengths: list[int] | None = None,
    on_step: Callable[[gym.Env], None] | None = None,
) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes, seeded ``seed, seed+1, ...``: the one
    episode loop of the library (evaluation, rollouts, GIFs).

    Args:
        env: The env (closed by the caller).
        policy: Observation to action; ``None`` for uniformly random actions drawn from the
            action space seeded with ``seed``.
        episodes: Number of episodes.
        seed: First reset seed.
        lengths: If given, each episode's length is appended to it (to count env steps).
        on_step: Called with the env after each reset and each step (to render frames).
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    env.action_space.seed(seed)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        if on_step is not None:
            on_step(env)
        total, done, steps = 0.0, False, 0
        while not done:
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            if on_step is not None:
                on_step(env)
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        if lengths is not None:
            lengths.append(steps)
    return returns


def summarise(returns: list[float]) -> dict[str, float | list[float]]:
    """``return_mean``, ``return_std`` and the list of ``returns``."""
    arr = np.asarray(returns, dtype=np.float64)
    return {"return_mean": float(arr.mean()), "return_std": float(arr.std()), "returns": returns}


def random_rollout(
    family: Family, task: Mapping[str, float], *, episodes: int = 1, seed: int = 0
) -> dict[str, float | list[float]]:
    """Returns of a uniformly random policy on ``task``."""
    env = family.make(task=task)
    try:
        return summarise(run_episodes(env, None, episodes=episodes, seed=seed))
    finally:
        env.close()


def normalised_score(value: float, random: float, oracle: float) -> float:
    """``(value - random) / (oracle - random)``: 0 is random, 1 the oracle.

    Raises:
        ValueError: the oracle is not better than random (the score is undefined).
    """
    if not oracle > random:
        raise ValueError(
            f"normalised score undefined: oracle return {oracle:g} is not above random {random:g}"
        )
    return (value - random) / (oracle - random)


class ParamsPolicy:
    """Actions of a flat parameter vector, for one env's action space.

    Deterministic: the Gaussian's mean clipped to the action space (as SB3's ``predict``
    does), or the arg-max of the logits. With ``rng``: sampled from the policy's
    distribution (then clipped), as during training.
    """

    def __init__(
        self,
        spec: PolicySpec,
        params: torch.Tensor,
        action_space: gym.Space,
        rng: np.random.Generator | None = None,
    ):
        self.policy = build_policy(spec.arch)
        spec.load_into(self.policy, params)
        self.policy.set_training_mode(False)
        self.discrete = spec.arch.action_kind == "discrete"
        self.rng = rng
        if not self.discrete:
            self.low, self.high = action_space.low, action_space.high
            self.std = np.exp(spec.unflatten(params)["log_std"].detach().numpy())

    def __call__(self, obs: np.ndarray) -> np.ndarray | int:
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
            features = self.policy.extract_features(x, self.policy.features_extractor)
            latent = self.policy.mlp_extractor.forward_actor(features)
            out = self.policy.action_net(latent)[0].numpy().astype(np.float64)
        if self.discrete:
            if self.rng is None:
                return int(out.argmax())
            p = np.exp(out - out.max())
            return int(self.rng.choice(len(p), p=p / p.sum()))
        if self.rng is not None:
            out = out + self.std * self.rng.standard_normal(out.shape)
        return np.clip(out, self.low, self.high).astype(np.float32)


def collect_states(
    spec: PolicySpec,
    params: torch.Tensor,
    family: Family,
    task: Mapping[str, float],
    *,
    n_states: int,
    seed: int,
    stochastic: bool = True,
) -> np.ndarray:
    """Observations that the policy ``params`` visits on ``task`` (``(n_states, obs_dim)``)."""
    env = family.make(task=task)
    rng = np.random.default_rng(seed)
    policy = ParamsPolicy(spec, params, env.action_space, rng if stochastic else None)
    states = []
    obs, _ = env.reset(seed=seed)
    episode = 0
    try:
        while len(states) < n_states:
            states.append(np.asarray(obs, dtype=np.float32))
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            if terminated or truncated:
                episode += 1
                obs, _ = env.reset(seed=seed + 10_000 * episode)
    finally:
        env.close()
    return np.stack(states)


def evaluate_params(
    spec: PolicySpec,
    params: torch.Tensor,
    family: Family,
    task: Mapping[str, float],
    *,
    episodes: int,
    seed: int = 0,
    lengths: list[int] | None = None,
) -> float:
    """Mean deterministic return of the policy ``params`` on ``task``.

    ``lengths``, if given, receives each episode's length (to count env steps).
    """
    env = family.make(task=task)
    try:
        policy = ParamsPolicy(spec, params, env.action_space)
        return float(
            np.mean(run_episodes(env, policy, episodes=episodes, seed=seed, lengths=lengths))
        )
    finally:
        env.close()


class _ModelPolicy:
    """An SB3 model's deterministic action, as a policy of :func:`run_episodes`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.model.predict(obs, deterministic=True)[0]


def model_policy(model: Any, spec: PolicySpec, action_space: gym.Space) -> Policy:
    """An SB3 model's deterministic policy for :func:`run_episodes`: PPO and A2C through
    ``spec``'s parameters (as every evaluation of the library acts), SAC and TD3 through
    their own actor."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    if isinstance(model, OffPolicyAlgorithm):
        return _ModelPolicy(model)
    return ParamsPolicy(spec, plain_params(model, spec), action_space)


def learning_curve(
    model: Any,
    spec: PolicySpec,
    family: Family,
    task: Mapping[str, float],
    *,
    checkpoints: Sequence[int],
    episodes: int,
    seed: int,
    extrapolate: bool = False,
) -> list[tuple[int, float]]:
    """Deterministic return of an SB3 model's policy after each of ``checkpoints`` env steps.

    The model learns between checkpoints (``model.learn`` in chunks, one continuous run);
    step 0 is the model as given. SB3 always finishes a rollout, so a point can come a little
    after its checkpoint: each point's x is the env steps the model had really taken. A
    model that took steps before it was given (an off-policy warm start's
    ``model.warm_steps``, a probe's ``model.probe_steps``) counts them: its first point is
    at those steps, and it learns only what each checkpoint leaves. A fine-tune that
    diverges keeps its last finite policy for the remaining points. PPO and A2C models act
    through ``spec``'s parameters, SAC and TD3 with their own deterministic actor.
    """
    if list(checkpoints) != sorted(set(checkpoints)) or min(checkpoints) < 0:
        raise ConfigError(f"checkpoints must be increasing and non-negative, got {checkpoints}")

    from meta_rl.infra.divergence import DivergenceGuard

    env = family.make(task=task, extrapolate=extrapolate)
    before = int(getattr(model, "warm_steps", 0)) + int(getattr(model, "probe_steps", 0))
    curve, done = [], 0
    guard = DivergenceGuard()  # a diverged fine-tune keeps its last finite policy
    try:
        for step in checkpoints:
            if step - before > done and not guard.diverged:
                model.learn(
                    step - before - done,
                    reset_num_timesteps=done == 0,
                    progress_bar=False,
                    callback=guard,
                )
                done = int(model.num_timesteps)
            policy = model_policy(model, spec, env.action_space)
            ret = float(np.mean(run_episodes(env, policy, episodes=episodes, seed=seed)))
            curve.append((before + done, ret))
    finally:
        env.close()
    return curve
