"""Inferring the task from a probe: the encoder, its checkpoint, the API and the CLI."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from meta_rl.agents import InferringAgent, adapt, evaluate, infer_task
from meta_rl.agents.infer import probe_seed
from meta_rl.cli import main
from meta_rl.errors import CheckpointError, ConfigError, FamilyError
from meta_rl.infra.files import load_tensors, save_tensors
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.inference import run_probe
from meta_rl.mapping.policy import plain_params
from meta_rl.training.inference import InferenceConfig, probe_params, train_inference

from .conftest import TINY_TRAIN

SMALL = InferenceConfig(
    probe_steps=40, min_steps=10, hidden=(32,), probes_per_task=1, updates=200, batch=32
)
"""An encoder of a few seconds: 1 probe of 40 steps per training task."""
TASK = {"m": 1.6, "l": 1.2, "g": 11.0, "max_torque": 1.8}


@pytest.fixture(scope="module")
def inferring(tmp_path_factory):
    """The shipped Pendulum mapping with a small encoder, saved and loaded back."""
    trained = TrainedMapping.load("pendulum")
    trained.inference = train_inference(trained, SMALL, seed=0)
    path = tmp_path_factory.mktemp("inference") / "pendulum-infer.safetensors"
    trained.save(path)
    return path, TrainedMapping.load(path)


def test_the_checkpoint_keeps_the_encoder_and_its_report(inferring):
    _, loaded = inferring
    assert loaded.inference is not None
    report = loaded.inference.report
    assert set(report["features"]) == {"m", "l", "g", "max_torque"}
    assert report["env_steps"] == (report["train_tasks"] + report["val_tasks"]) * 40
    # the network and the encoder load apart: the prediction is the shipped one's
    shipped = TrainedMapping.load("pendulum")
    assert torch.equal(loaded.predict(TASK), shipped.predict(TASK))
    assert loaded.inference.identified().keys() == report["features"].keys()


def test_a_probe_repeats_exactly_and_the_seed_matters(inferring):
    _, trained = inferring
    a = infer_task(trained, task=TASK, steps=60, seed=3)
    b = infer_task(trained, task=TASK, steps=60, seed=3)
    c = infer_task(trained, task=TASK, steps=60, seed=4)
    assert np.array_equal(a.descriptor, b.descriptor) and np.array_equal(a.std, b.std)
    assert not np.array_equal(a.descriptor, c.descriptor)
    assert a.steps == 60 and set(a.task) == set(TASK)


def test_the_belief_ignores_order_and_narrows_with_evidence(inferring):
    _, trained = inferring
    env = trained.family.make(task=TASK)
    transitions = run_probe(trained.spec, probe_params(trained), env, steps=80, noise=0.3, seed=0)
    env.close()
    model = trained.inference
    mean, std = model.belief(transitions)
    shuffled = transitions[np.random.default_rng(0).permutation(len(transitions))]
    mean2, std2 = model.belief(shuffled)
    np.testing.assert_allclose(mean, mean2, atol=1e-5)
    np.testing.assert_allclose(std, std2, atol=1e-5)
    _, std_half = model.belief(transitions[:40])
    assert (std <= std_half).all() and (std < std_half).any()


def test_the_probe_does_not_read_the_task(inferring, monkeypatch):
    """The env's task attribute is not consulted: the probe sees transitions only."""
    _, trained = inferring
    env = gym.make("meta_rl/Pendulum-v0", task=TASK)
    expected = infer_task(trained, env, steps=40, seed=1)
    base = env.unwrapped
    monkeypatch.setattr(type(base), "task", property(lambda self: pytest.fail("task read")))
    monkeypatch.setattr(
        type(base), "descriptor", property(lambda self: pytest.fail("descriptor read"))
    )
    again = infer_task(trained, env, steps=40, seed=1)
    assert np.array_equal(again.descriptor, expected.descriptor)


def test_adapt_and_evaluate_predict_for_the_inferred_task(inferring):
    _, trained = inferring
    model = adapt(trained, task=TASK, infer=50, algo="ppo", seed=2)
    assert model.probe_steps == 50 and model.warm_steps == 0
    expected = trained.predict_descriptor(model.belief.descriptor)
    assert torch.allclose(plain_params(model, trained.spec), expected)
    scores = evaluate(trained, TASK, infer=50, seed=2, episodes=2)
    assert scores.belief is not None and scores.belief.steps == 50
    assert scores == evaluate(trained, TASK, infer=50, seed=2, episodes=2)  # repeats
    assert np.array_equal(scores.belief.descriptor, model.belief.descriptor)
    known = adapt(trained, task=TASK, algo="ppo")
    assert known.probe_steps == 0


def test_an_env_given_to_adapt_is_probed(inferring):
    _, trained = inferring
    env = gym.make("meta_rl/Pendulum-v0", task=TASK)
    model = adapt(trained, env, infer=40, algo="ppo", seed=5)
    belief = infer_task(trained, task=TASK, steps=40, seed=probe_seed(5))
    assert np.array_equal(model.belief.descriptor, belief.descriptor)


def test_errors_say_what_to_do(inferring):
    _, trained = inferring
    with pytest.raises(ConfigError, match="at least 10 steps"):
        infer_task(trained, task=TASK, steps=5)
    with pytest.raises(CheckpointError, match="add-inference"):
        infer_task("pendulum-rl", task=TASK, steps=40)
    with pytest.raises(FamilyError, match="do not match"):
        infer_task(trained, gym.make("meta_rl/MountainCarContinuous-v0"), steps=40)
    with pytest.raises(ConfigError, match="not both"):
        infer_task(trained, gym.make("meta_rl/Pendulum-v0"), task=TASK, steps=40)
    with pytest.raises(ConfigError, match="zero-shot"):
        evaluate(trained, TASK, policy="base", infer=40)
    env = trained.family.make(task=TASK)
    transitions = run_probe(trained.spec, probe_params(trained), env, steps=40, noise=0.3, seed=0)
    env.close()
    with pytest.raises(FamilyError, match="unlike this family"):
        trained.inference.belief(transitions * 1000)


def test_the_acting_agent_infers_from_its_own_transitions_on_schedule(inferring, monkeypatch):
    from meta_rl.evaluation import ParamsPolicy

    _, trained = inferring
    env = gym.make("meta_rl/Pendulum-v0", task=TASK)
    base = env.unwrapped  # the task is never read, as by the probe
    monkeypatch.setattr(type(base), "task", property(lambda self: pytest.fail("task read")))
    agent = InferringAgent(trained, env, every=15)
    obs = np.float32([0.3, -0.9, 1.2])

    def acts_as(params: torch.Tensor) -> bool:
        return np.allclose(
            agent.act(obs), ParamsPolicy(trained.spec, params, env.action_space)(obs)
        )

    assert agent.belief is None and acts_as(probe_params(trained))  # the default task's
    first = agent.run_episode(seed=0)  # 200 steps: inferences at 10, 25, ..., 190
    assert agent.inferences == 13 and agent.belief.steps == 190
    assert acts_as(trained.predict_descriptor(agent.belief.descriptor))
    # Evidence carries over the env's episodes until forget(); the same seeds repeat.
    agent.run_episode(seed=1)
    assert agent.belief.steps == 400 and agent.inferences == 27  # 10 + 15 * 26 = 400
    agent.forget()
    assert agent.belief is None and agent.inferences == 0 and acts_as(probe_params(trained))
    assert agent.run_episode(seed=0) == first


def test_the_acting_agent_reads_its_latest_window(inferring):
    _, trained = inferring
    env = gym.make("meta_rl/Pendulum-v0", task=TASK)
    agent = InferringAgent(trained, env, every=1, window=30)
    seen = []
    obs, _ = env.reset(seed=4)
    for _ in range(45):
        action = agent.act(obs)
        next_obs, reward, *_ = env.step(action)
        agent.observe(obs, action, reward, next_obs)
        seen.append(
            np.concatenate([obs, np.ravel(action), [reward], next_obs - obs]).astype(np.float32)
        )
        obs = next_obs
    mean, std = trained.inference.belief(np.stack(seen[-30:]))
    assert agent.belief.steps == 30 and agent.inferences == 45 - 10 + 1
    assert np.allclose(agent.belief.descriptor, mean) and np.allclose(agent.belief.std, std)


def test_the_acting_agent_acts_on_discrete_actions(tmp_path):
    trained = TrainedMapping.load("cartpole")  # shipped with an inference model
    env = gym.make("meta_rl/CartPole-v0", task={"length": 0.9})
    agent = InferringAgent(trained, env, every=10)
    returns = [agent.run_episode(seed=i) for i in range(2)]
    assert all(r >= 1 for r in returns) and isinstance(agent.act(env.reset(seed=0)[0]), int)
    assert agent.belief is not None and set(agent.belief.task) == set(trained.task_space.names)


def test_the_acting_agent_refuses_what_it_cannot_use(inferring):
    from stable_baselines3.common.vec_env import DummyVecEnv

    _, trained = inferring
    env = gym.make("meta_rl/Pendulum-v0")
    with pytest.raises(ConfigError, match="every must be a positive int"):
        InferringAgent(trained, env, every=0)
    with pytest.raises(ConfigError, match="window must hold"):
        InferringAgent(trained, env, window=5)
    with pytest.raises(ConfigError, match="acts in one env"):
        InferringAgent(trained, DummyVecEnv([lambda: gym.make("meta_rl/Pendulum-v0")]))
    with pytest.raises(CheckpointError, match="add-inference"):
        InferringAgent("pendulum-rl", env)
    with pytest.raises(FamilyError, match="do not match"):
        InferringAgent(trained, gym.make("meta_rl/MountainCarContinuous-v0"))


def test_a_corrupted_encoder_is_refused(inferring, tmp_path):
    path, _ = inferring
    tensors, meta = load_tensors(path)
    bad = {**tensors, "inference.input_std": torch.zeros_like(tensors["inference.input_std"])}
    save_tensors(tmp_path / "zero.safetensors", bad, meta)
    with pytest.raises(CheckpointError, match="input_std"):
        TrainedMapping.load(tmp_path / "zero.safetensors")
    missing = {k: v for k, v in tensors.items() if k != "inference.net.0.bias"}
    save_tensors(tmp_path / "missing.safetensors", missing, meta)
    with pytest.raises(CheckpointError, match=r"inference\.net\.0\.bias"):
        TrainedMapping.load(tmp_path / "missing.safetensors")
    short = {**meta, "inference": {**meta["inference"], "min_steps": 500}}
    save_tensors(tmp_path / "steps.safetensors", tensors, short)
    with pytest.raises(CheckpointError, match="min_steps"):
        TrainedMapping.load(tmp_path / "steps.safetensors")


def test_the_config_refuses_bad_settings():
    with pytest.raises(ConfigError, match="min_steps"):
        InferenceConfig(probe_steps=10, min_steps=20)
    with pytest.raises(ConfigError, match="noise"):
        InferenceConfig(noise=2.0)


def test_cli_infer_on_evaluate_adapt_and_rollout(capsys, inferring, tmp_path):
    path, _ = inferring
    for command in ("evaluate", "rollout"):
        argv = [command, str(path), "--task", "m=1.6,l=1.2", "--infer", "40", "--json"]
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["inferred"]["probe_steps"] == 40 and "m" in out["inferred"]["task"]
    argv = ["adapt", str(path), "--task", "m=1.6", "--infer", "40", "--algo", "ppo"]
    argv += ["--steps", "0", "--episodes", "1", "--out", str(tmp_path / "a.zip"), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["inferred"]["probe_steps"] == 40
    assert main(["evaluate", "pendulum-rl", "--infer", "40"]) == 2
    assert "add-inference" in capsys.readouterr().err


def test_cli_add_inference_writes_a_new_checkpoint(capsys, tiny_mapping, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = str(tiny_mapping[0])
    argv = ["add-inference", source, "--probe-steps", "20", "--min-steps", "10", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    written = tmp_path / out["checkpoint"]
    assert written.name.endswith("-infer.safetensors")
    assert TrainedMapping.load(written).inference.probe_steps == 20
    assert TrainedMapping.load(source).inference is None  # the input is left as it was
    before = written.read_bytes()
    assert main(argv) == 2  # the default output exists: nothing is replaced unasked
    assert "--out" in capsys.readouterr().err
    assert written.read_bytes() == before


def test_train_with_inference_saves_an_encoder(tmp_path):
    from meta_rl.training.config import TrainConfig, settings_key
    from meta_rl.training.trainer import train

    settings = {**TINY_TRAIN, "n_train": 8, "workdir": tmp_path, "objective": "distill"}
    config = TrainConfig(**settings, inference=SMALL)
    trained, log = train(config)
    assert trained.inference is not None and "features" in log["inference"]
    plain = TrainConfig(**settings)
    assert settings_key(plain) != settings_key(config)


def test_the_encoder_learns_from_training_tasks_and_their_stream_never_held_out_ones():
    from meta_rl.training.inference import encoder_tasks, split_tasks

    cartpole = TrainedMapping.load("cartpole")  # an `rl` mapping of 24 training tasks
    tasks = encoder_tasks(cartpole, 100)
    assert len(tasks) == 100 and tasks[:24] == cartpole.training_tasks
    split = cartpole.info["split"]
    assert not any(t in tasks for t in split["test"] + split["val"])
    train, val = split_tasks(cartpole, 100)
    assert not any(t in train for t in val) and all(t in val for t in split["val"])


def test_an_explicit_probe_length_needs_an_inference_model_before_any_work(tmp_path):
    from meta_rl.benchmarks.score import ScoreConfig, score_mapping

    config = ScoreConfig(checkpoint="pendulum-rl", out_dir=tmp_path, infer_steps=50)
    with pytest.raises(CheckpointError, match="add-inference"):
        score_mapping(config)
    config = ScoreConfig(checkpoint="pendulum", out_dir=tmp_path, infer_steps=5)
    with pytest.raises(ConfigError, match="min_steps"):
        score_mapping(config)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
