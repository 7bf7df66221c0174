"""Batched family envs: same dynamics as the single envs, a task per sub-env, Gymnasium's
autoreset rules, and an SB3 VecEnv that SB3 trains on."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO
from stable_baselines3.common.utils import check_for_correct_spaces
from stable_baselines3.common.vec_env import VecCheckNan, VecMonitor

from meta_rl.agents import FamilyVecEnv
from meta_rl.envs import Feature, get_family, make_family
from meta_rl.envs.vector import FamilyVectorEnv, batched_families

from .conftest import Drift

BATCHED = ["Pendulum", "CartPole", "MountainCarContinuous", "Acrobot"]


def test_the_four_classic_families_are_batched():
    assert sorted(batched_families()) == sorted(f.lower() for f in BATCHED)


def _actions(space: gym.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.n, size=n)
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(np.float32)


@pytest.mark.parametrize("name", BATCHED)
def test_batched_and_single_envs_agree_step_by_step(name):
    family = get_family(name)
    n, rng = 5, np.random.default_rng(0)
    tasks = family.task_space.sample(n, 1)
    vec = FamilyVectorEnv(family, n, tasks)
    singles = [family.make(task=t) for t in tasks]
    vec.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i)
        vec.state[i] = np.asarray(env.unwrapped.state, dtype=vec.state.dtype)
    live = np.ones(n, dtype=bool)
    compared = 0
    for _ in range(60):
        actions = _actions(vec.single_action_space, n, rng)
        obs, reward, terminated, _, _ = vec.step(actions)
        for i, env in enumerate(singles):
            if not live[i]:
                continue
            # A Box action beyond this task's own limit is clipped by both alike.
            o, r, te, tr, _ = env.step(actions[i])
            np.testing.assert_allclose(obs[i], o, rtol=1e-6, atol=1e-6, err_msg=f"{name} env {i}")
            assert reward[i] == pytest.approx(r, rel=1e-6, abs=1e-9)
            assert terminated[i] == te
            compared += 1
            live[i] = not (te or tr)
    assert compared >= 5 * 10


def test_each_sub_env_keeps_its_own_task():
    family = get_family("Pendulum")
    tasks = family.task_space.sample(4, 3)
    heavier = [dict(t) for t in tasks]
    heavier[0]["m"] = 2.0
    a, b = FamilyVectorEnv(family, 4, tasks), FamilyVectorEnv(family, 4, heavier)
    a.reset(seed=7), b.reset(seed=7)
    actions = np.full((4, 1), 1.0, dtype=np.float32)
    for _ in range(20):
        oa = a.step(actions)[0]
        ob = b.step(actions)[0]
    assert not np.allclose(oa[0], ob[0])
    np.testing.assert_array_equal(oa[1:], ob[1:])
    a.set_task(1, {"g": 5.0})
    assert a.tasks[1]["g"] == 5.0 and a.tasks[2] == tasks[2]


def test_bad_tasks_and_actions_are_refused():
    with pytest.raises(ValueError, match="'m'"):
        FamilyVectorEnv("Pendulum", 2, [{"m": 99.0}, {}])
    with pytest.raises(ValueError, match="expected 3 tasks"):
        FamilyVectorEnv("Pendulum", 3, [{}, {}])
    unbatched = make_family(
        "Unbatched",
        Drift,
        [Feature(name="rate", default=0.0, low=-0.5, high=0.5)],
        apply={"rate": "rate"},
        register=False,
    )
    with pytest.raises(ValueError, match="no batched environment"):
        FamilyVectorEnv(unbatched, 2)  # a family every install has (no extra needed)
    with pytest.raises(ValueError, match="max_episode_steps"):
        FamilyVectorEnv("Pendulum", 2, max_episode_steps=-5)
    with pytest.raises(ValueError, match="num_envs"):
        FamilyVectorEnv("Pendulum", True)
    vec = FamilyVectorEnv("CartPole", 2)
    with pytest.raises(ValueError, match="not a sub-env"):
        vec.set_task(5, {})
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be in"):
        vec.step(np.array([0, 5]))


def test_next_step_autoreset_follows_gymnasium():
    vec = FamilyVectorEnv("CartPole", 3)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    vec.reset(seed=0)
    left = np.zeros(3, dtype=np.int64)
    for step in range(100):  # noqa: B007 (read after the loop)
        obs, reward, terminated, truncated, _ = vec.step(left)
        if terminated.any():
            break
    assert terminated.any() and step < 50
    ended = terminated.copy()
    obs, reward, terminated, truncated, _ = vec.step(left)
    # The step after the end is the reset: action ignored, reward 0, no flags, a start state.
    assert (reward[ended] == 0).all() and not terminated[ended].any()
    assert not truncated[ended].any() and (np.abs(obs[ended]) <= 0.05).all()


def test_truncation_and_same_step_mode():
    vec = FamilyVectorEnv("Pendulum", 2, max_episode_steps=5)
    vec.reset(seed=0)
    zero = np.zeros((2, 1), dtype=np.float32)
    flags = [vec.step(zero)[3].copy() for _ in range(6)]
    assert [f.all() for f in flags] == [False, False, False, False, True, False]
    same = FamilyVectorEnv("Pendulum", 2, max_episode_steps=5, autoreset_mode="same_step")
    same.reset(seed=0)
    for _ in range(4):
        same.step(zero)
    obs, _, _, truncated, info = same.step(zero)
    assert truncated.all() and info["_final_obs"].all()
    assert not np.allclose(info["final_obs"], obs)  # obs is already the next episode's first
    assert (same.elapsed == 0).all()


def test_sb3_adapter_contract_and_training():
    venv = FamilyVecEnv("CartPole", 4, get_family("CartPole").task_space.sample(4, 0), seed=0)
    single = get_family("CartPole").make()
    # SB3's own check: a model trained on the single env loads onto the batched one.
    check_for_correct_spaces(venv, single.observation_space, single.action_space)
    obs = venv.reset()
    assert obs.shape == (4, 4) and obs.dtype == np.float32
    ended = None
    for _ in range(600):
        obs, reward, done, infos = venv.step(np.zeros(4, dtype=np.int64))
        assert obs.shape == (4, 4) and reward.shape == (4,) and done.dtype == bool
        if done.any():
            ended = infos[int(np.flatnonzero(done)[0])]
            break
    assert ended is not None and ended["terminal_observation"].shape == (4,)
    assert ended["TimeLimit.truncated"] is False and ended["episode"]["l"] > 0
    assert venv.get_attr("task", 1)[0] == venv.venv.tasks[1]
    venv.env_method("set_task", {"gravity": 19.6}, indices=[0])
    assert venv.venv.tasks[0]["gravity"] == 19.6

    checked = VecMonitor(VecCheckNan(FamilyVecEnv("Pendulum", 4, seed=0), raise_exception=True))
    model = PPO("MlpPolicy", checked, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(512)
    assert model.num_timesteps == 512


def test_speed_script_runs(tmp_path, capsys):
    from meta_rl.benchmarks.speed import main

    assert main(["--quick", "--json", str(tmp_path / "speed.json")]) == 0
    printed = capsys.readouterr().out
    assert "| CartPole | 256 |" in printed and "Mapping prediction" in printed
    data = json.loads((tmp_path / "speed.json").read_text())
    rates = [r["batched"] for r in data["vector_envs"]] + [r["sync"] for r in data["vector_envs"]]
    assert all(r > 0 for r in rates) and data["mapping_latency"]["single_median_ms"] > 0
    # The td3 objective's gradient steps beside SB3's TD3 and SAC, with their ratio.
    assert data["td3"]["updates_per_second"] > 0 and data["td3"]["batch"] == 256
    assert [r["algo"] for r in data["sb3_off_policy"]] == ["TD3", "SAC"]
    assert "x the td3 objective's" in printed


@pytest.mark.parametrize(
    ("name", "kwargs", "options"),
    [
        ("CartPole", {"sutton_barto_reward": True}, None),
        # Start near the goal, so that the cars reach it within the steps compared.
        ("MountainCarContinuous", {"goal_velocity": 0.005}, {"low": 0.3, "high": 0.44}),
    ],
)
def test_batched_env_honours_the_single_envs_keywords(name, kwargs, options):
    family = get_family(name)
    n, rng = 6, np.random.default_rng(0)
    vec = gym.make_vec(family.id, n, vectorization_mode="vector_entry_point", **kwargs)
    singles = [family.make(**kwargs) for _ in range(n)]
    vec.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i, options=options)
        vec.unwrapped.state[i] = np.asarray(env.unwrapped.state, dtype=vec.unwrapped.state.dtype)
    live, ended = np.ones(n, dtype=bool), 0
    for _ in range(60):
        # Forward throttle only (MountainCar), so that the cars reach the goal.
        actions = np.abs(_actions(vec.single_action_space, n, rng))
        _, reward, terminated, _, _ = vec.step(actions)
        for i, env in enumerate(singles):
            if live[i]:
                _, r, te, tr, _ = env.step(actions[i])
                assert reward[i] == pytest.approx(r, rel=1e-6, abs=1e-9)
                assert terminated[i] == te
                ended += te
                live[i] = not (te or tr)
    assert ended >= 1, "the comparison covers the step that ends an episode"


def test_batched_env_refuses_keywords_it_cannot_honour():
    with pytest.raises(ValueError, match=r"'render_mode'.*SyncVectorEnv"):
        FamilyVectorEnv("CartPole", 2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="'g' is a task feature"):
        FamilyVectorEnv("Pendulum", 2, g=9.81)
    with pytest.raises(TypeError, match="no_such_keyword"):
        FamilyVectorEnv("Acrobot", 2, no_such_keyword=1)
