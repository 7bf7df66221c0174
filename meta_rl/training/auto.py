"""A recipe for a family that has none: derived from its env, with the reasons.

A user's family (:func:`meta_rl.envs.make_family`) can carry its own recipe
(``make_family(..., recipe=...)``) or be trained with one (``TrainConfig(recipe=...)``).
Without either, :func:`auto_recipe` derives one from a short seeded random rollout of the
default task. What it decides, and why:

* **Objective** by action kind: ``td3`` for Box actions (it trains no experts, and won the
  selection on Pendulum), ``rl`` for discrete ones (the winner on CartPole and Acrobot). The
  fine-tune follows: SAC for Box actions, PPO for discrete ones.
* **Discount** from the horizon ``T`` (the time limit, else the random episodes' mean
  length, else 1,000): an effective horizon ``1 / (1 - gamma)`` of a fifth of the episode,
  ``gamma = 1 - 5 / T`` kept in ``[0.95, 0.999]``, for PPO and for the off-policy objective
  alike.
* **Rollouts**: PPO collects about one episode per env between updates (``n_steps`` the
  power of two nearest ``T``, from 128 to 2,048), over 4 envs.
* **Network sizes**: hidden layers of 64 for observations of up to 16 features, 128 above
  (the mapping predicts every weight, so its output grows with the policy).
* **Budgets**: those of the classic-control families (200,000 env steps for the base,
  50,000 per expert, 300,000 per oracle; 50,000 for the oracle's SAC run): scale them all
  with ``budget_scale``.
* **Scales it measures**: the observation features' and rewards' spread over the rollout.
  The policy's input is the raw observation and the prediction a plain ``MlpPolicy``, so
  nothing is rescaled behind the user's back: an observation spread past
  :data:`OBS_SPREAD_LIMIT` or a reward per step past :data:`REWARD_LIMIT` is reported with
  what to do (rescale it in the env) in the decisions' notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from meta_rl.errors import FamilyError
from meta_rl.training.recipes import Recipe, warm_start

PROFILE_STEPS = 2000
"""Env steps of the random rollout an automatic recipe is derived from."""
DEFAULT_HORIZON = 1000
"""The horizon of an env with no time limit whose random episodes do not end."""
OBS_SPREAD_LIMIT = 10.0
"""An observation feature whose spread (std over the rollout) is larger than this saturates
the policy's tanh layers: the notes say so."""
REWARD_LIMIT = 100.0
"""A mean absolute reward per step larger than this makes value losses dominate PPO's
clipped gradient: the notes say so."""


@dataclass(frozen=True)
class EnvProfile:
    """What a short random rollout of a family's default task shows.

    Attributes:
        obs_dim: Observation features.
        action_kind: ``"box"`` or ``"discrete"``.
        action_dim: Action dimensions (Box) or actions (discrete).
        time_limit: The family's time limit, if it has one.
        episode_lengths: Lengths of the random episodes that ended within the rollout.
        obs_spread: The largest std of one observation feature over the rollout.
        reward_scale: Mean absolute reward per step.
    """

    obs_dim: int
    action_kind: str
    action_dim: int
    time_limit: int | None
    episode_lengths: tuple[int, ...]
    obs_spread: float
    reward_scale: float

    @property
    def horizon(self) -> tuple[int, str]:
        """The episode length the recipe plans for, and where it comes from."""
        if self.time_limit:
            return int(self.time_limit), "its time limit"
        if self.episode_lengths:
            return round(float(np.mean(self.episode_lengths))), "random episodes' mean length"
        return DEFAULT_HORIZON, "no time limit and no random episode ended: a default"


def profile_env(family: Any, steps: int = PROFILE_STEPS, seed: int = 0) -> EnvProfile:
    """A seeded random rollout of ``family``'s default task (``steps`` env steps)."""
    env = family.make()
    try:
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise FamilyError(
                f"family {family.name}: policies need a flat Box observation space, got {obs_space}"
            )
        if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
            kind, dim = "box", int(act_space.shape[0])
        elif isinstance(act_space, gym.spaces.Discrete):
            kind, dim = "discrete", int(act_space.n)
        else:
            raise FamilyError(
                f"family {family.name}: policies need a Box or Discrete action space, got "
                f"{act_space}"
            )
        act_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        observations, rewards, lengths, length = [obs], [], [], 0
        for _ in range(steps):
            obs, reward, terminated, truncated, _ = env.step(act_space.sample())
            observations.append(obs)
            rewards.append(float(reward))
            length += 1
            if terminated or truncated:
                lengths.append(length)
                length = 0
                obs, _ = env.reset()
                observations.append(obs)
    finally:
        env.close()
    spread = np.std(np.asarray(observations, dtype=np.float64), axis=0)
    return EnvProfile(
        obs_dim=int(obs_space.shape[0]),
        action_kind=kind,
        action_dim=dim,
        time_limit=family.max_episode_steps,
        episode_lengths=tuple(lengths),
        obs_spread=float(np.max(spread)) if spread.size else 0.0,
        reward_scale=float(np.mean(np.abs(rewards))) if rewards else 0.0,
    )


def auto_recipe(family: Any, profile: EnvProfile | None = None) -> tuple[Recipe, list[str]]:
    """The automatic recipe of ``family`` and the lines that say what it decided and why
    (the training logs them; see the module's docstring).

    Raises:
        FamilyError: the env's spaces are not ones a policy of this library can have.
    """
    p = profile if profile is not None else profile_env(family)
    horizon, source = p.horizon
    gamma = min(0.999, max(0.95, 1 - 5 / max(horizon, 1)))
    gamma = round(gamma, 4)
    n_steps = 2 ** min(11, max(7, round(math.log2(max(horizon, 1)))))
    width = 64 if p.obs_dim <= 16 else 128
    box = p.action_kind == "box"
    ppo = {
        "n_steps": n_steps,
        "batch_size": 256,
        "gamma": gamma,
        "gae_lambda": 0.95,
        "n_epochs": 10,
        "learning_rate": 3e-4,
        "clip_range": 0.2,
        "ent_coef": 0.0,
    }
    recipe = Recipe(
        ppo=ppo,
        n_envs=4,
        base_steps=200_000,
        expert_steps=50_000,
        oracle_steps=300_000,
        finetune=warm_start(ppo, n_steps=max(64, n_steps // 2), learning_rate=1e-4),
        finetune_n_envs=2,
        finetune_algo="sac" if box else "ppo",
        # The converted actor starts where the prediction acts (one gain per action
        # dimension): the start that kept HalfCheetahVel's SAC fine-tune safe.
        finetune_sac={"head_gain": None} if box else {},
        finetune_td3={"head_gain": None} if box else {},
        pi=(width, width),
        vf=(width, width),
        log_std_init=-0.5,
        sac={"gamma": gamma} if box else None,
        sac_steps=50_000 if box else 0,
        objective="td3" if box else "rl",
        off_policy={"gamma": gamma},
    )
    kind = f"{p.action_dim}-dimensional Box" if box else f"{p.action_dim} discrete"
    lines = [
        f"automatic recipe for {family.name} (it has none of its own; pass one with "
        "make_family(..., recipe=...) or TrainConfig(recipe=...))",
        f"objective {recipe.objective}, fine-tune {recipe.finetune_algo}: {kind} actions",
        f"discount {gamma}: horizon {horizon} ({source}), effective horizon a fifth of it",
        f"PPO rollouts of {n_steps} steps x 4 envs; hidden layers {width}x{width} for "
        f"{p.obs_dim} observation features",
        "budgets of the classic-control families (base 200,000 env steps, 50,000 per "
        "expert, oracle 300,000): scale them with budget_scale",
    ]
    if p.obs_spread > OBS_SPREAD_LIMIT:
        lines.append(
            f"warning: an observation feature spreads {p.obs_spread:.3g} over random play; "
            "the policy's tanh layers saturate past a few units: rescale it in the env"
        )
    if p.reward_scale > REWARD_LIMIT:
        lines.append(
            f"warning: rewards average {p.reward_scale:.3g} per step in absolute value; "
            "value losses that large swamp PPO's clipped gradient: rescale them in the env"
        )
    return recipe, lines
