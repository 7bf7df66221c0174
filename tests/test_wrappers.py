"""Wrappers: descriptor observations and a new task at every reset, accepted by SB3."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from meta_rl.envs import DescriptorObservation, TaskResampling


def test_descriptor_observation_appends_descriptor(family):
    env = DescriptorObservation(family.make(task=family.task_space.sample(1, 0)[0]))
    obs, _ = env.reset(seed=0)
    base_dim = family.make().observation_space.shape[0]
    assert obs.shape == (base_dim + family.task_space.dim,)
    np.testing.assert_array_equal(obs[base_dim:], env.unwrapped.descriptor)
    assert env.observation_space.contains(obs)
    sb3_check_env(env, warn=False)


def test_task_resampling_draws_new_tasks_reproducibly(family):
    env = TaskResampling(family.make(), family.task_space)
    tasks_a = [env.reset(seed=4)[1]["task"]] + [env.reset()[1]["task"] for _ in range(4)]
    tasks_b = [env.reset(seed=4)[1]["task"]] + [env.reset()[1]["task"] for _ in range(4)]
    assert tasks_a == tasks_b
    assert len({tuple(t.values()) for t in tasks_a}) == 5
    assert env.unwrapped.task == tasks_b[-1]
    sb3_check_env(env, warn=False)


def test_task_resampling_from_a_list():
    tasks = [{"m": 0.5}, {"m": 2.0}]
    env = TaskResampling(gym.make("meta_rl/Pendulum-v0"), tasks)
    seen = {env.reset(seed=s)[1]["task"]["m"] for s in range(20)}
    assert seen == {0.5, 2.0}
    with pytest.raises(ValueError, match="empty"):
        TaskResampling(gym.make("meta_rl/Pendulum-v0"), [])


def test_resampling_declares_the_widest_spaces():
    env = TaskResampling(gym.make("meta_rl/Pendulum-v0"), [{"max_torque": 1.0}])
    assert env.action_space.high[0] == pytest.approx(3.0)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_wrappers_refuse_plain_envs():
    with pytest.raises(ValueError, match="not a meta_rl family env"):
        DescriptorObservation(gym.make("Pendulum-v1"))


def test_sb3_trains_on_wrapped_family():
    env = DescriptorObservation(
        TaskResampling(gym.make("meta_rl/CartPole-v0"), [{"length": 1.0}, {"length": 0.3}])
    )
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    assert model.num_timesteps >= 128
