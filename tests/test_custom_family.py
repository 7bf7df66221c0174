"""make_family: a user's own family over any Gymnasium env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from meta_rl.envs import Feature, families, get_family, make_family

from .conftest import Drift


def _power_family():
    return make_family(
        "TestMountainCar",
        "MountainCarContinuous-v0",
        [Feature(name="power", default=0.0015, low=0.001, high=0.003, scale="log")],
        apply={"power": "power"},
    )


def test_family_from_gymnasium_id():
    family = _power_family()
    assert family.id == "meta_rl/TestMountainCar-v0"
    assert get_family("testmountaincar") is family
    assert family.name in families()
    env = gym.make(family.id, task={"power": 0.003})
    assert env.unwrapped.power == 0.003
    assert env.spec.max_episode_steps == 999
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env, warn=False)


def test_feature_of_custom_family_changes_trajectory():
    family = _power_family()
    out = []
    for power in (0.001, 0.003):
        env = family.make(task={"power": power})
        env.reset(seed=0)
        for _ in range(20):
            obs, *_ = env.step(np.array([1.0], dtype=np.float32))
        out.append(obs)
    assert not np.allclose(out[0], out[1])


def test_family_from_env_class_with_function():
    family = make_family(
        "Drift",
        Drift,
        [Feature(name="rate", default=0.0, low=-0.5, high=0.5)],
        apply=lambda env, task: setattr(env, "rate", task["rate"]),
        max_episode_steps=10,
    )
    env = family.make(task={"rate": 0.5})
    env.reset(seed=0)
    x0 = env.unwrapped.x
    env.step(np.zeros(1, np.float32))
    assert env.unwrapped.x == pytest.approx(x0 + 0.5)
    with pytest.raises(ValueError, match="'rate'"):
        family.make(task={"rate": 2.0})


def test_make_family_errors():
    feats = [Feature(name="power", default=0.0015, low=0.001, high=0.003)]
    with pytest.raises(ValueError, match="unknown Gymnasium id"):
        make_family("Bad", "NoSuchEnv-v9", feats, apply={"power": "power"})
    with pytest.raises(ValueError, match="missing"):
        make_family("Bad", "MountainCarContinuous-v0", feats, apply={})
    with pytest.raises(ValueError, match="unknown family"):
        get_family("NoSuchFamily")
