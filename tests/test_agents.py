"""What a user meets in the first hour: the thread count ``learn`` runs on, the baselines as
one-liners, seeded evaluation, and ``train``'s result where a mapping is expected."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from meta_rl.agents import (
    Evaluation,
    adapt,
    base_policy,
    evaluate,
    load_mapping,
    torch_threads,
)
from meta_rl.cli import main
from meta_rl.errors import CheckpointError, ConfigError
from meta_rl.training.trainer import TrainResult

TASK = {"m": 1.3, "l": 0.8}
STEPS = 200  # one rollout of the fine-tune (its n_steps x n_envs)
QUICK = {"warm_steps": 32, "fit_updates": 5, "critic_updates": 5}  # a short off-policy warm start


class Threads(BaseCallback):
    """Records torch's thread count at every step of ``learn``."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.seen: set[int] = set()
        self.fail = fail

    def _on_step(self) -> bool:
        self.seen.add(torch.get_num_threads())
        if self.fail:
            raise RuntimeError("a callback of the user's fails")
        return True


@pytest.fixture
def two_threads():
    """The process runs on two torch threads, as a user's would (conftest sets one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- threads (item 1)
def test_learn_runs_on_one_thread_and_gives_the_callers_count_back(tiny_mapping, two_threads):
    path, *_ = tiny_mapping
    quick = {**QUICK, "batch_size": 16}
    for make in (adapt, base_policy):
        for algo, cls, settings in (("ppo", PPO, {}), ("sac", SAC, quick)):
            model = make(path, task=TASK, algo=algo, **settings)
            assert isinstance(model, cls)  # still an SB3 PPO (or SAC)
            assert torch.get_num_threads() == 2  # building it changed nothing either
            seen = Threads()
            model.learn(STEPS, callback=seen)
            assert seen.seen == {1}
            assert torch.get_num_threads() == 2
    failing = Threads(fail=True)
    with pytest.raises(RuntimeError, match="fails"):
        adapt(path, task=TASK).learn(STEPS, callback=failing)
    assert failing.seen == {1} and torch.get_num_threads() == 2


def test_threads_argument(tiny_mapping, two_threads):
    path, *_ = tiny_mapping
    untouched, three = Threads(), Threads()
    adapt(path, task=TASK, threads=None, algo="ppo").learn(STEPS, callback=untouched)
    adapt(path, task=TASK, threads=3, algo="a2c").learn(STEPS, callback=three)
    assert untouched.seen == {2} and three.seen == {3}
    assert torch.get_num_threads() == 2
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ConfigError, match="threads"):
            adapt(path, task=TASK, threads=bad)
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_seeded_fine_tune_is_the_same_whatever_the_callers_thread_count(tiny_mapping):
    path, trained, *_ = tiny_mapping
    tuned = []
    for threads in (1, 2):
        with torch_threads(threads):
            model = adapt(path, task=TASK, seed=3, algo="ppo")
            model.learn(STEPS)
        tuned.append(trained.spec.flatten(model.policy))
        with torch_threads(threads):  # an off-policy fine-tune too, warm start included
            sac = adapt(path, task=TASK, seed=3, algo="sac", **QUICK)
            sac.learn(STEPS)
        tuned.append(torch.nn.utils.parameters_to_vector(sac.policy.parameters()).detach())
    assert torch.equal(tuned[0], tuned[2]) and torch.equal(tuned[1], tuned[3])


def test_a_scoped_model_saves_as_a_plain_sb3_model(tiny_mapping, tmp_path):
    path, trained, *_ = tiny_mapping
    model = adapt(path, task=TASK, algo="ppo")
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip")
    assert type(loaded) is PPO
    assert torch.equal(trained.spec.flatten(loaded.policy), trained.predict(TASK))
    sac = adapt(path, task=TASK, algo="sac", **QUICK)
    sac.save(tmp_path / "s.zip")
    loaded = SAC.load(tmp_path / "s.zip")
    assert type(loaded) is SAC
    for a, b in zip(sac.policy.parameters(), loaded.policy.parameters(), strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- baselines (item 2)
def test_base_policy_carries_the_default_task_expert(tiny_mapping):
    path, trained, *_ = tiny_mapping
    env = gym.make("meta_rl/Pendulum-v0", task=TASK)
    for model in (base_policy(path, env, algo="ppo"), base_policy(trained, task=TASK, algo="a2c")):
        assert torch.equal(trained.spec.flatten(model.policy), trained.base_params)
        assert model.get_env().get_attr("task")[0] == trained.task_space.validate(TASK)
    predicted = adapt(path, env, algo="ppo").policy
    assert torch.equal(trained.spec.flatten(predicted), trained.predict(TASK))


def test_evaluate_gives_what_meta_rl_evaluate_prints(tiny_mapping, capsys):
    path, *_ = tiny_mapping
    for task, seed in ((TASK, 5), ({}, 0)):
        text = ",".join(f"{k}={v}" for k, v in task.items())
        argv = ["evaluate", str(path), "--episodes", "3", "--seed", str(seed), "--json"]
        assert main([*argv, "--task", text] if text else argv) == 0
        printed = json.loads(capsys.readouterr().out)
        got = evaluate(path, task, episodes=3, seed=seed)
        assert got.mean == printed["return_mean"] and got.std == printed["return_std"]
        assert list(got.returns) == printed["returns"] and got.episodes == 3


def test_evaluate_scores_the_baselines_and_models_on_the_same_episodes(tiny_mapping):
    path, trained, *_ = tiny_mapping
    zero_shot = evaluate(trained, TASK, episodes=2, seed=4)
    assert isinstance(zero_shot, Evaluation) and "over 2 episodes" in str(zero_shot)
    assert zero_shot == evaluate(path, TASK, policy="zero-shot", episodes=2, seed=4)
    ppo = adapt(path, task=TASK, algo="ppo")
    assert zero_shot == evaluate(path, TASK, policy=ppo, episodes=2, seed=4)
    base = evaluate(path, TASK, policy="base", episodes=2, seed=4)
    expert = base_policy(path, task=TASK, algo="ppo")
    assert base == evaluate(path, TASK, policy=expert, episodes=2, seed=4)
    assert evaluate(path, TASK, episodes=2, seed=5).returns != zero_shot.returns


def test_evaluate_refuses_what_it_cannot_score(tiny_mapping):
    path, *_ = tiny_mapping
    with pytest.raises(ConfigError, match="policy must be"):
        evaluate(path, TASK, policy="expert")
    cartpole = PPO("MlpPolicy", make_vec_env("CartPole-v1"), device="cpu")
    with pytest.raises(CheckpointError, match="architecture"):
        evaluate(path, TASK, policy=cartpole)
    with pytest.raises(ConfigError, match="episodes"):
        evaluate(path, TASK, episodes=0)


# ---------------------------------------------------------------- train's result (item 3)
def test_train_result_is_a_mapping_argument(tiny_mapping):
    _, trained, log, _ = tiny_mapping
    result = TrainResult(trained, log)
    mapping, got_log = result  # existing code unpacks it
    assert mapping is result.mapping is trained and got_log is result.log is log
    assert load_mapping(result) is trained
    model = adapt(result, task=TASK, algo="ppo")
    assert torch.equal(trained.spec.flatten(model.policy), trained.predict(TASK))
    assert evaluate(result, TASK, episodes=1) == evaluate(trained, TASK, episodes=1)


@pytest.mark.parametrize("bad", [None, 3, b"pendulum", {"m": 1.0}, ("pendulum",)])
def test_anything_else_as_a_mapping_is_a_checkpoint_error(bad):
    with pytest.raises(CheckpointError, match="a mapping is a TrainedMapping"):
        adapt(bad, task=TASK)


def test_the_old_tuple_gets_a_hint(tiny_mapping):
    _, trained, log, _ = tiny_mapping
    for call in (adapt, base_policy, evaluate):
        with pytest.raises(CheckpointError, match="pass its first item"):
            call((trained, log), task=TASK)


# ---------------------------------------------------------------- seeded evaluation (item 4)
def test_seeded_evaluate_policy_repeats_as_the_examples_show(tiny_mapping):
    path, *_ = tiny_mapping
    model = adapt(path, task=TASK)
    eval_env = make_vec_env("meta_rl/Pendulum-v0", n_envs=1, env_kwargs={"task": TASK})
    means = []
    for _ in range(2):
        eval_env.seed(0)
        means.append(evaluate_policy(model, eval_env, n_eval_episodes=3)[0])
    assert means[0] == means[1]
