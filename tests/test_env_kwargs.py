"""Every keyword of the Gymnasium env under a family is honoured or refused.

For each built-in family and each keyword its Gymnasium env's constructor accepts (found
with ``inspect.signature``, so a keyword new in Gymnasium fails here until it is handled),
the family either behaves as the Gymnasium env given the same keyword (default task, same
seed, same actions: same spaces, observations, rewards and flags), or refuses the keyword
at construction with an error that names it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator

from meta_rl.envs import get_family
from meta_rl.envs.registry import BUILTINS

from .conftest import constructor_keywords

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
"""As ``test_default_task_equals_gymnasium``: Gymnasium computes some envs in float32."""

Policy = Callable[[np.ndarray], np.ndarray]
Reward = Callable[[float, dict, np.ndarray], float]


def _push_along_velocity(obs: np.ndarray) -> np.ndarray:
    """MountainCar's swing-up: it reaches the goal in about 110 steps."""
    return np.array([1.0 if obs[1] >= 0 else -1.0], dtype=np.float32)


def _vel_reward(reward: float, info: dict, action: np.ndarray) -> float:
    """HalfCheetahVel's reward at its default target (1 m/s), from Gymnasium's step."""
    return -abs(info["x_velocity"] - 1.0) - 0.05 * float(np.sum(np.square(action)))


@dataclass(frozen=True)
class Twin:
    """The Gymnasium env a family builds on, and what the family does differently by design.

    Attributes:
        env_id: Gymnasium id.
        kwargs: Keywords that make it the family's twin (LunarLanderContinuous's).
        extra: Module the family's optional extra provides (skip without it).
        refused: Keywords the family refuses.
        reward: The family's reward, from the twin's step, where it differs by design.
        policy: Actions from observations (default: seeded random actions).
        steps: Length of the compared rollout.
    """

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    extra: str | None = None
    refused: frozenset[str] = frozenset()
    reward: Reward | None = None
    policy: Policy | None = None
    steps: int = 120


LANDER_REFUSED = frozenset({"gravity", "enable_wind", "wind_power", "turbulence_power"})
TWINS = {
    "Pendulum": Twin("Pendulum-v1", refused=frozenset({"g"})),
    "CartPole": Twin("CartPole-v1"),
    "MountainCarContinuous": Twin(
        "MountainCarContinuous-v0", policy=_push_along_velocity, steps=200
    ),
    "Acrobot": Twin("Acrobot-v1"),
    "LunarLander": Twin("LunarLander-v3", extra="Box2D", refused=LANDER_REFUSED),
    "LunarLanderContinuous": Twin(
        "LunarLander-v3", {"continuous": True}, extra="Box2D", refused=LANDER_REFUSED
    ),
    "HalfCheetah": Twin("HalfCheetah-v5", extra="mujoco"),
    "HalfCheetahVel": Twin(
        "HalfCheetah-v5",
        extra="mujoco",
        refused=frozenset({"forward_reward_weight", "ctrl_cost_weight"}),
        reward=_vel_reward,
    ),
}

_MUJOCO_ASSETS = Path(gym.__file__).parent / "envs" / "mujoco" / "assets"
VALUES: dict[str, Any] = {
    # every env
    "render_mode": "rgb_array",
    # Pendulum
    "g": 9.81,
    # CartPole
    "sutton_barto_reward": True,
    # MountainCarContinuous: above the speed the swing-up reaches the goal with (0.064)
    "goal_velocity": 0.066,
    # LunarLander
    "continuous": True,
    "gravity": -8.0,
    "enable_wind": True,
    "wind_power": 10.0,
    "turbulence_power": 1.0,
    # HalfCheetah-v5
    "xml_file": str(_MUJOCO_ASSETS / "half_cheetah.xml"),
    "frame_skip": 4,
    "default_camera_config": {"distance": 5.0},
    "forward_reward_weight": 2.0,
    "ctrl_cost_weight": 0.3,
    "reset_noise_scale": 0.2,
    "exclude_current_positions_from_observation": False,
    # MujocoEnv, through HalfCheetahEnv's **kwargs (the first three Gymnasium refuses too)
    "model_path": "half_cheetah.xml",
    "observation_space": None,
    "width": 64,
    "height": 48,
    "camera_id": 0,
    "camera_name": "track",
    "max_geom": 500,
    "visual_options": {},
}
"""A test value per keyword, unlike the default where the keyword changes behaviour."""


def _twin_class(twin: Twin) -> type:
    return load_env_creator(gym.spec(twin.env_id).entry_point)  # type: ignore[arg-type]


def _cases() -> Iterator[Any]:
    for name, twin in TWINS.items():
        try:
            base = _twin_class(twin)
        except (ImportError, gym.error.DependencyNotInstalled):
            yield pytest.param(name, None, id=f"{name}-extra-missing")
            continue
        for keyword in constructor_keywords(base):
            yield pytest.param(name, keyword, id=f"{name}-{keyword}")


def _skip_without_extra(twin: Twin) -> None:
    if twin.extra:
        pytest.importorskip(twin.extra)


def assert_same_rollout(ours: gym.Env, theirs: gym.Env, twin: Twin, seed: int = 3) -> None:
    """Same spaces, and the same observations, rewards and flags under the same actions."""
    assert ours.observation_space == theirs.observation_space
    assert ours.action_space == theirs.action_space
    theirs.action_space.seed(seed)
    obs, _ = ours.reset(seed=seed)
    their_obs, _ = theirs.reset(seed=seed)
    np.testing.assert_allclose(obs, their_obs, **TOLERANCE)
    for t in range(twin.steps):
        action = twin.policy(their_obs) if twin.policy else theirs.action_space.sample()
        obs, reward, terminated, truncated, _ = ours.step(action)
        their_obs, their_reward, their_terminated, their_truncated, info = theirs.step(action)
        if twin.reward is not None:
            their_reward = twin.reward(their_reward, info, action)
        np.testing.assert_allclose(obs, their_obs, **TOLERANCE, err_msg=f"step {t}")
        np.testing.assert_allclose(reward, their_reward, **TOLERANCE, err_msg=f"step {t}")
        assert (terminated, truncated) == (their_terminated, their_truncated), f"step {t}"
        if terminated or truncated:
            break


def test_every_builtin_family_has_a_twin():
    assert sorted(TWINS) == sorted(b.name for b in BUILTINS)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_family_builds_on_its_twin(name):
    twin = TWINS[name]
    _skip_without_extra(twin)
    assert issubclass(get_family(name).env_cls, _twin_class(twin))


@pytest.mark.parametrize(("name", "keyword"), list(_cases()))
def test_keyword_is_honoured_or_refused(name, keyword):
    twin = TWINS[name]
    _skip_without_extra(twin)
    assert keyword in VALUES, (
        f"{twin.env_id} takes a keyword {keyword!r} that the {name} family does not handle "
        "yet: honour it (same behaviour as Gymnasium's env) or refuse it (TaskEnv's "
        "refused_kwargs), then give it a test value in VALUES"
    )
    family = get_family(name)
    kwargs = {keyword: VALUES[keyword]}
    try:
        theirs = gym.make(twin.env_id, **{**twin.kwargs, **kwargs})
    except TypeError:
        theirs = None
    if theirs is None:
        # Gymnasium's env refuses it itself (a parameter it sets on its own): so must ours.
        # (Checked outside the except block: there, CPython 3.11 reports a keyword given
        # twice as a KeyError.)
        with pytest.raises(TypeError, match=keyword):
            family.make(**kwargs)
        return
    if keyword in twin.refused:
        with pytest.raises(ValueError, match=rf"does not take {keyword}=.*: \S"):
            family.make(**kwargs)
        return
    ours = family.make(**kwargs)
    assert getattr(ours.unwrapped, "render_mode", None) == theirs.unwrapped.render_mode
    assert_same_rollout(ours, theirs, twin)
    ours.close()
    theirs.close()


@pytest.mark.parametrize("name", sorted(TWINS))
def test_refused_keywords_are_constructor_keywords(name):
    """No stale refusals: each refused keyword is one Gymnasium's env takes."""
    twin = TWINS[name]
    _skip_without_extra(twin)
    assert twin.refused <= set(constructor_keywords(_twin_class(twin)))


def test_goal_velocity_moves_the_end_of_the_episode():
    """The compared rollout is not vacuous: goal_velocity changes when the swing-up ends."""
    ends = {}
    for goal_velocity in (0.0, VALUES["goal_velocity"]):
        env = gym.make("meta_rl/MountainCarContinuous-v0", goal_velocity=goal_velocity)
        obs, _ = env.reset(seed=3)
        for t in range(999):
            obs, reward, terminated, _, _ = env.step(_push_along_velocity(obs))
            if terminated:
                ends[goal_velocity] = (t, reward)
                break
    assert ends[0.0][0] < ends[VALUES["goal_velocity"]][0]
    assert ends[0.0][1] == ends[VALUES["goal_velocity"]][1] == pytest.approx(99.9)


def _cartpole_trace(env_id: str, sutton_barto_reward: bool) -> tuple[list, list[str]]:
    """Push left until well past the end: rewards, flags, steps_beyond_terminated, warnings."""
    env = gym.make(env_id, sutton_barto_reward=sutton_barto_reward)
    env.reset(seed=0)
    trace = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(30):
            _, reward, terminated, truncated, _ = env.step(0)
            trace.append((reward, terminated, truncated, env.unwrapped.steps_beyond_terminated))
    return trace, [str(w.message) for w in caught]


@pytest.mark.parametrize("sutton_barto_reward", [False, True])
def test_cartpole_rewards_and_steps_after_termination_match_gymnasium(sutton_barto_reward):
    ours, our_warnings = _cartpole_trace("meta_rl/CartPole-v0", sutton_barto_reward)
    theirs, their_warnings = _cartpole_trace("CartPole-v1", sutton_barto_reward)
    assert ours == theirs
    end = [terminated for _, terminated, _, _ in ours].index(True)
    assert 0 < end < 20, "the pole falls early, so the trace covers steps after termination"
    rewards = [reward for reward, *_ in ours]
    if sutton_barto_reward:
        assert rewards == [0.0] * end + [-1.0] * (30 - end)
    else:
        assert rewards == [1.0] * (end + 1) + [0.0] * (29 - end)
    # One warning, at the first step after the end, as Gymnasium's.
    assert len(our_warnings) == len(their_warnings) == 1
    assert "reset()" in our_warnings[0]


def test_cartpole_reset_clears_the_after_termination_count():
    env = gym.make("meta_rl/CartPole-v0")
    env.reset(seed=0)
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(0)
    assert env.unwrapped.steps_beyond_terminated == 0
    env.reset(seed=1)
    assert env.unwrapped.steps_beyond_terminated is None
    assert env.step(0)[1] == 1.0


def test_task_feature_keyword_error_says_how_to_set_it():
    with pytest.raises(ValueError, match=r"task feature.*task=\{'g': \.\.\.\}.*\[5, 15\]"):
        gym.make("meta_rl/Pendulum-v0", g=9.81)


def test_custom_family_refuses_a_keyword_named_like_its_feature():
    from meta_rl.envs import Feature, make_family

    family = make_family(
        "GravityPendulum",
        "Pendulum-v1",
        [Feature(name="g", default=10.0, low=5.0, high=15.0)],
        apply={"g": "g"},
        register=False,
    )
    with pytest.raises(ValueError, match="'g' is a task feature"):
        family.make(g=9.81)
    assert family.make(task={"g": 9.81}).unwrapped.g == 9.81
