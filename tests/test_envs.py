"""Family envs: API checks, every feature matters, independence, determinism, defaults."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import meta_rl
from meta_rl.envs import families

from .conftest import FAMILY_NAMES

STEPS = 40


def rollout(env: gym.Env, seed: int, steps: int = STEPS, action_seed: int = 123) -> np.ndarray:
    """Observations and rewards under a fixed random action sequence, flattened."""
    space = env.action_space
    space.seed(action_seed)
    actions = [space.sample() for _ in range(steps)]
    obs, _ = env.reset(seed=seed)
    out = [np.asarray(obs, dtype=np.float64)]
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append(np.append(np.asarray(obs, dtype=np.float64), reward))
        if terminated or truncated:
            break
    return np.concatenate(out)


def test_import_registers_every_family():
    assert meta_rl.__version__
    for family in families().values():
        assert family.id in gym.registry
        env = gym.make(family.id)
        assert env.unwrapped.task == family.task_space.default_task()
        env.close()


def test_gymnasium_check_env(family):
    env = family.make()
    gym_check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_sb3_check_env(family):
    env = family.make()
    sb3_check_env(env, warn=False)
    env.close()


def test_public_contract(family):
    task = family.task_space.sample(1, np.random.default_rng(1))[0]
    env = gym.make(family.id, task={k: task[k] for k in list(task)[:1]})
    base = env.unwrapped
    assert base.task_space is family.task_space
    first = family.task_space.features[0].name
    assert base.task[first] == task[first]
    base.set_task(task)
    assert base.task == task
    d = base.descriptor
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, family.task_space.to_descriptor(task))
    env.close()


def _edge_task(family, name):
    f = family.task_space[name]
    far = f.high if (f.high - f.default) >= (f.default - f.low) else f.low
    return {name: far}


@pytest.mark.parametrize(
    ("name", "feature"),
    [(n, f.name) for n in FAMILY_NAMES for f in families()[n].task_space.features],
)
def test_every_feature_changes_the_trajectory(name, feature):
    family = families()[name]
    base_env, moved_env = family.make(), family.make(task=_edge_task(family, feature))
    a = rollout(base_env, seed=5)
    b = rollout(moved_env, seed=5)
    base_env.close()
    moved_env.close()
    assert a.shape != b.shape or not np.allclose(a, b), f"{feature} does not change {name}"


def test_seeded_determinism(family):
    task = family.task_space.sample(1, np.random.default_rng(2))[0]
    a = rollout(family.make(task=task), seed=11)
    b = rollout(family.make(task=task), seed=11)
    c = rollout(family.make(task=task), seed=12)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_instances_are_independent(family):
    """Stepping an env of another task in between changes nothing."""
    alone = rollout(family.make(), seed=3)
    other_task = {
        f.name: f.low if f.default != f.low else f.high for f in family.task_space.features
    }
    env, other = family.make(), family.make(task=other_task)
    space = env.action_space
    space.seed(123)
    actions = [space.sample() for _ in range(STEPS)]
    other.action_space.seed(0)
    obs, _ = env.reset(seed=3)
    other.reset(seed=4)
    out = [np.asarray(obs, dtype=np.float64)]
    for action in actions:
        other.step(other.action_space.sample())
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append(np.append(np.asarray(obs, dtype=np.float64), reward))
        if terminated or truncated:
            break
    np.testing.assert_array_equal(np.concatenate(out), alone)


def test_lunar_lander_instances_do_not_share_gravity():
    pytest.importorskip("Box2D")
    from gymnasium.envs.box2d import lunar_lander as ll

    light = gym.make("meta_rl/LunarLander-v0", task={"gravity": -6.0, "main_engine_power": 18.0})
    heavy = gym.make("meta_rl/LunarLander-v0", task={"gravity": -11.5})
    light.reset(seed=0)
    heavy.reset(seed=0)
    for _ in range(10):
        light.step(2)
        heavy.step(2)
    assert light.unwrapped.world.gravity[1] == pytest.approx(-6.0)
    assert heavy.unwrapped.world.gravity[1] == pytest.approx(-11.5)
    assert (ll.MAIN_ENGINE_POWER, ll.SIDE_ENGINE_POWER) == (13.0, 0.6)


GYMNASIUM_TWINS = {
    "Pendulum": ("Pendulum-v1", {}),
    "CartPole": ("CartPole-v1", {}),
    "MountainCarContinuous": ("MountainCarContinuous-v0", {}),
    "Acrobot": ("Acrobot-v1", {}),
    "LunarLander": ("LunarLander-v3", {}),
    "LunarLanderContinuous": ("LunarLander-v3", {"continuous": True}),
    "HalfCheetah": ("HalfCheetah-v5", {}),
}


@pytest.mark.parametrize("name", sorted(GYMNASIUM_TWINS))
def test_default_task_equals_gymnasium(name):
    if name.startswith(("LunarLander", "HalfCheetah")):
        pytest.importorskip("Box2D" if name.startswith("LunarLander") else "mujoco")
    env_id, kwargs = GYMNASIUM_TWINS[name]
    ours = rollout(families()[name].make(), seed=9, steps=100)
    theirs = rollout(gym.make(env_id, **kwargs), seed=9, steps=100)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_pendulum_action_space_follows_max_torque():
    env = gym.make("meta_rl/Pendulum-v0", task={"max_torque": 3.0, "g": 15.0, "l": 0.5})
    assert env.action_space.high[0] == pytest.approx(3.0)
    assert env.observation_space.high[2] == pytest.approx(8 * np.sqrt(3.0))
    env.unwrapped.set_task({"max_torque": 1.0})
    assert env.unwrapped.action_space.high[0] == pytest.approx(1.0)


def test_half_cheetah_vel_reward():
    pytest.importorskip("mujoco")
    env = gym.make("meta_rl/HalfCheetahVel-v0", task={"target_velocity": 0.5})
    env.reset(seed=0)
    action = np.zeros(6, dtype=np.float32)
    _, reward, _, _, info = env.step(action)
    assert reward == pytest.approx(-abs(info["x_velocity"] - 0.5))
    assert env.spec.max_episode_steps == 200


@pytest.mark.parametrize("bad", [{"m": float("nan")}, {"mass": 1.0}, {"m": "heavy"}, {"m": 9.0}])
def test_make_and_set_task_reject_bad_tasks(bad):
    with pytest.raises(ValueError, match=r"'m'|'mass'"):
        gym.make("meta_rl/Pendulum-v0", task=bad)
    env = gym.make("meta_rl/Pendulum-v0", task={"m": 1.5})
    with pytest.raises(ValueError):
        env.unwrapped.set_task(bad)
    assert env.unwrapped.task["m"] == 1.5  # a refused task leaves the env as it was
