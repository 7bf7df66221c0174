"""The pipeline end to end at tiny budgets: train, save, load, adapt; caching; checkpoints."""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from meta_rl.agents import ExtrapolationWarning, adapt
from meta_rl.evaluation import ParamsPolicy, evaluate_params, run_episodes
from meta_rl.infra.files import load_tensors, save_tensors
from meta_rl.mapping.checkpoint import TrainedMapping, resolve_checkpoint
from meta_rl.training.config import TrainConfig
from meta_rl.training.trainer import TrainResult, train


def test_a_td3_mapping_predicts_for_descriptors_clamped_to_its_training_region(tiny_mapping):
    _, trained, _, _ = tiny_mapping
    space = trained.task_space
    first = space.features[0]

    def task(z: float) -> dict[str, float]:  # the first feature at descriptor value z
        return {**space.default_task(), first.name: float(first.denormalise(z))}

    # An extrapolation split holds out the first feature's top quarter (z > 0.5).
    td3 = replace(trained, objective="td3", info={**trained.info, "split_kind": "extrapolation"})
    assert td3.clamps and not trained.clamps
    beyond, edge, inside = td3.predict(task(0.9)), td3.predict(task(0.5)), td3.predict(task(0.2))
    assert torch.allclose(beyond, edge, atol=1e-5)
    assert (td3.predict(task(0.9), clamp=False) - edge).abs().max() > 1e-4
    assert torch.equal(inside, td3.predict(task(0.2), clamp=False))
    # Other objectives predict for the task's own descriptor, unless asked.
    assert (trained.predict(task(0.9)) - trained.predict(task(0.5))).abs().max() > 1e-4
    # Beyond the bounds, an interpolation-split td3 mapping predicts at the bound.
    # adapt says so where the policy is the nearest in-region task's.
    with pytest.warns(ExtrapolationWarning, match="nearest task inside"):
        adapt(td3, task=task(0.9), n_steps=64, batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        adapt(td3, task=task(0.2), n_steps=64, batch_size=32)
        adapt(trained, task=task(0.9), n_steps=64, batch_size=32)
    interpolation = replace(trained, objective="td3")
    over = {**task(1.0), first.name: first.high * 1.25}
    assert torch.allclose(
        interpolation.predict(over, extrapolate=True), interpolation.predict(task(1.0)), atol=1e-5
    )


def test_a_familys_recipe_chooses_whether_its_mappings_clamp(tiny_mapping):
    from dataclasses import asdict

    from meta_rl.errors import CheckpointError
    from meta_rl.training.config import settings_key
    from meta_rl.training.recipes import recipe_for, recipe_from_json

    _, trained, _, _ = tiny_mapping
    space = trained.task_space
    first = space.features[0]
    beyond = {**space.default_task(), first.name: float(first.denormalise(0.9))}
    edge = {**space.default_task(), first.name: float(first.denormalise(0.5))}
    td3 = replace(trained, objective="td3", info={**trained.info, "split_kind": "extrapolation"})
    # A recipe that says no clamp: the td3 mapping extrapolates, with no warning from adapt.
    own = replace(td3, recipe=replace(td3.recipe, clamp=False))
    assert not own.clamps
    assert torch.equal(own.predict(beyond, extrapolate=True), td3.predict(beyond, clamp=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        adapt(own, task=beyond, n_steps=64, batch_size=32)
    # A recipe that says clamp: any objective's mapping predicts at the region's edge.
    other = replace(trained, info=td3.info, recipe=replace(trained.recipe, clamp=True))
    assert other.clamps and torch.allclose(other.predict(beyond), other.predict(edge), atol=1e-5)
    # Saved before the choice (no "clamp"): the family's installed choice; a recorded one
    # is kept; anything but a boolean or null is refused.
    old = {k: v for k, v in asdict(recipe_for("HalfCheetahVel")).items() if k != "clamp"}
    assert recipe_from_json(old, family="HalfCheetahVel").clamp is False
    assert recipe_from_json(old, family="Pendulum").clamp is None
    assert recipe_from_json({**old, "clamp": True}, family="HalfCheetahVel").clamp is True
    with pytest.raises(CheckpointError, match="clamp"):
        recipe_from_json({**old, "clamp": "yes"})
    # The clamp is not training: a run's key does not change with it.
    config = TrainConfig(family="Pendulum", recipe=recipe_for("Pendulum"), workdir="unused")
    clamped = replace(config, recipe=replace(config.recipe, clamp=True))
    assert settings_key(config) == settings_key(clamped)


def test_train_save_load_round_trip(tiny_mapping):
    path, trained, log, _ = tiny_mapping
    loaded = TrainedMapping.load(path)
    task = {"m": 1.7, "l": 1.3}
    assert torch.equal(loaded.predict(task), trained.predict(task))
    meta = load_tensors(path)[1]
    assert meta["family"] == "Pendulum" and meta["objective"] == "distill"
    assert meta["versions"]["torch"] and meta["policy"]["arch"]["obs_dim"] == 3
    assert log["result"]["env_steps"] > 0
    split = trained.info["split"]
    assert len(split["train"]) == 3 and split["test"]
    keys = {tuple(t.values()) for t in split["train"]}
    assert not keys & {tuple(t.values()) for t in split["test"] + split["val"]}


def test_second_run_reuses_cached_experts(tiny_mapping, monkeypatch):
    _, trained, _, config = tiny_mapping
    import meta_rl.training.experts as experts

    def refuse(*args, **kwargs):
        raise AssertionError("an expert was retrained instead of read from the cache")

    monkeypatch.setattr(experts, "_expert_job", refuse)
    result = train(config)
    again, log = result  # a TrainResult unpacks as the (mapping, log) it replaced
    assert isinstance(result, TrainResult) and result.mapping is again and result.log is log
    assert torch.equal(again.base_params, trained.base_params)


def test_same_seed_same_mapping_and_same_returns(tiny_mapping, tmp_path):
    _, trained, _, config = tiny_mapping
    fresh = TrainConfig(**{**config.__dict__, "workdir": tmp_path})
    again, _ = train(fresh)
    for (name, a), b in zip(
        trained.network.state_dict().items(), again.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    family, task = trained.family, {"m": 1.7, "l": 0.8}
    returns = [
        evaluate_params(m.spec, m.predict(task), family, task, episodes=3, seed=11)
        for m in (trained, again)
    ]
    assert returns[0] == returns[1]
    other_seed = evaluate_params(
        trained.spec, trained.predict(task), family, task, episodes=3, seed=12
    )
    assert other_seed != returns[0]  # the seed does reach the episodes


def test_adapt_gives_an_sb3_model_with_the_prediction(tiny_mapping):
    path, trained, _, _ = tiny_mapping
    task = {"m": 1.2, "g": 12.0}
    model = adapt(str(path), task=task, n_envs=1, n_steps=64, batch_size=32, algo="ppo")
    assert isinstance(model, PPO)
    full = trained.task_space.validate(task)
    torch.testing.assert_close(trained.spec.flatten(model.policy), trained.predict(full))
    # the optimizer is fresh: no state yet, and it holds exactly the policy's parameters
    assert not model.policy.optimizer.state
    opt_params = [p for g in model.policy.optimizer.param_groups for p in g["params"]]
    assert len(opt_params) == len(list(model.policy.parameters()))
    model.learn(128)
    assert model.num_timesteps >= 128
    # SB3's own settings pass through, verbose included
    loud = adapt(str(path), task=task, n_envs=1, n_steps=64, batch_size=32, verbose=1, algo="ppo")
    assert loud.verbose == 1


def test_adapt_from_an_env_and_refusals(tiny_mapping):
    import gymnasium as gym

    _, trained, _, _ = tiny_mapping
    env = gym.make("meta_rl/Pendulum-v0", task={"l": 0.7})
    model = adapt(trained, env, n_steps=64, batch_size=32, algo="ppo")
    torch.testing.assert_close(
        trained.spec.flatten(model.policy), trained.predict(env.unwrapped.task)
    )
    with pytest.raises(ValueError, match="not of the mapping's family"):
        adapt(trained, gym.make("meta_rl/CartPole-v0"))
    with pytest.raises(ValueError, match="--extrapolate"):
        adapt(trained, task={"m": 3.0})
    with pytest.warns(ExtrapolationWarning):
        adapt(trained, task={"m": 3.0}, extrapolate=True, n_steps=64, batch_size=32, algo="ppo")


def test_zero_shot_policy_acts_in_bounds(tiny_mapping):
    _, trained, _, _ = tiny_mapping
    env = trained.family.make(task={"max_torque": 1.0})
    policy = ParamsPolicy(trained.spec, trained.predict(env.unwrapped.task), env.action_space)
    returns = run_episodes(env, policy, episodes=2, seed=0)
    assert len(returns) == 2 and all(np.isfinite(returns))


def test_checkpoint_errors(tiny_mapping, tmp_path):
    path, _, _, _ = tiny_mapping
    with pytest.raises(ValueError, match="no checkpoint file"):
        resolve_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=r"not CartPole|for family Pendulum"):
        TrainedMapping.load(path, family="CartPole")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(Path(path).read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated"):
        TrainedMapping.load(truncated)

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (tmp_path / "pwned.txt", "owned"))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="never loaded"):
        TrainedMapping.load(evil)
    assert not (tmp_path / "pwned.txt").exists()
    # torch.save writes a zip of pickles: refused as well, and nothing runs.
    torch.save({"weights": torch.zeros(2), "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError):
        TrainedMapping.load(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned.txt").exists()
    corrupted = bytearray(Path(path).read_bytes())
    corrupted[8:40] = b"\xff" * 32  # the JSON header
    (tmp_path / "corrupted.safetensors").write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match=r"corrupted|truncated|not a"):
        TrainedMapping.load(tmp_path / "corrupted.safetensors")

    tensors, meta = load_tensors(path)
    for change, needle in [
        ({"format_version": 99}, "format version"),
        ({"family": "CartPole"}, "task space"),
    ]:
        other = tmp_path / "other.safetensors"
        save_tensors(other, tensors, {**meta, **change})
        with pytest.raises(ValueError, match=needle):
            TrainedMapping.load(other)
    wrong = {**tensors, "head.bias": torch.zeros(5)}
    save_tensors(tmp_path / "wrong.safetensors", wrong, meta)
    with pytest.raises(ValueError, match="do not match"):
        TrainedMapping.load(tmp_path / "wrong.safetensors")


def test_training_log_is_json(tiny_mapping):
    _, _, _, config = tiny_mapping
    log = json.loads((Path(config.workdir) / "pendulum" / "train_log.json").read_text())
    assert log["result"]["selected_round"] in (0, 1, 2)
    assert len(log["experts"]) == 3


def test_config_errors():
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="magic")
    with pytest.raises(ValueError, match="unknown family"):
        TrainConfig(family="Nope")
    with pytest.raises(ValueError, match="rounds"):
        TrainConfig(rounds=0)


def test_default_objective_is_the_familys():
    assert TrainConfig(family="Pendulum").objective == "td3"  # chosen on validation tasks
    assert TrainConfig(family="CartPole").objective == "rl"
    assert TrainConfig(family="Acrobot").objective == "rl"
    assert TrainConfig(family="MountainCarContinuous").objective == "rl"
    assert TrainConfig(family="LunarLanderContinuous").objective == "td3"
    assert TrainConfig(family="LunarLander").objective == "distill"  # not compared yet
    for cheetah, iterations in (("HalfCheetah", 60), ("HalfCheetahVel", 100)):
        config = TrainConfig(family=cheetah)
        assert (config.objective, config.td3.iterations, config.td3.gamma) == (
            "td3",
            iterations,
            0.99,
        )
    lander = TrainConfig(family="LunarLanderContinuous").td3  # the recipe's settings
    assert (lander.iterations, lander.actor_lr, lander.average_tau) == (60, 3e-5, 0.001)
    assert TrainConfig(family="Pendulum", objective="distill").objective == "distill"


def test_expert_chunks_are_whole_rollouts_within_the_budget(monkeypatch):
    """A chunk shorter than PPO's rollout would cost a whole rollout while counting less:
    an expert's fine-tune takes whole rollouts and stops at the first past its budget."""
    from meta_rl.envs import get_family
    from meta_rl.mapping.policy import PolicyArch, PolicySpec, build_policy
    from meta_rl.training import experts

    monkeypatch.setattr(experts, "EXPERT_MIN_FRACTION", 1.0)  # no early stop
    family = get_family("Pendulum")
    arch = PolicyArch(obs_dim=3, action_kind="box", action_dim=1, pi=(8,), vf=(8,))
    ppo = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}
    job = experts._ExpertJob(
        family="Pendulum",
        task=dict(family.task_space.default_task()),
        arch=arch.to_json(),
        recipe={"ppo": ppo, "n_envs": 2, "expert_steps": 300},
        base=PolicySpec(arch).flatten(build_policy(arch)),
        seed=0,
        out="unused",
        eval_episodes=1,
    )
    _, record = experts._expert_job(job)
    assert record["steps"] == 3 * 128  # rollouts of 2 x 64 steps, 300 needs 3
    evaluations = 4  # the base and each chunk, 200 steps each
    assert record["env_steps"] == record["steps"] + evaluations * 200


def test_experts_evaluate_with_the_recipes_expert_episodes(tmp_path, monkeypatch):
    from dataclasses import replace

    from meta_rl.envs import get_family
    from meta_rl.mapping.policy import PolicyArch, PolicySpec, build_policy
    from meta_rl.training import experts
    from meta_rl.training.recipes import recipe_for

    seen = []

    def record(job):
        seen.append(job.eval_episodes)
        meta = {"task": job.task, "return_mean": 0.0, "base_return": 0.0, "steps": 0}
        return job.base, meta

    monkeypatch.setattr(experts, "_expert_job", record)
    family = get_family("Pendulum")
    arch = PolicyArch(obs_dim=3, action_kind="box", action_dim=1, pi=(8,), vf=(8,))
    base = PolicySpec(arch).flatten(build_policy(arch))
    recipe = recipe_for("Pendulum")
    assert recipe.expert_episodes == recipe.eval_episodes == 10  # the default
    tasks = family.task_space.sample(2, 0)
    quick = replace(recipe, expert_eval_episodes=3)
    experts.train_experts(
        family, tasks, base, quick, arch, seed=0, cache_dir=tmp_path, workers=0, progress=False
    )
    assert seen == [3, 3]
    # another number of episodes is another expert: a cached one is not reused for it
    experts.train_experts(
        family, tasks, base, recipe, arch, seed=0, cache_dir=tmp_path, workers=0, progress=False
    )
    assert seen == [3, 3, 10, 10]


def test_the_settings_key_names_every_setting_that_changes_a_result():
    from dataclasses import replace

    from meta_rl.infra.keys import KEY_VERSION
    from meta_rl.objectives.on_policy import RLConfig
    from meta_rl.objectives.td3 import TD3Config
    from meta_rl.training.config import settings_key

    config = TrainConfig(family="Pendulum", objective="td3")
    key = settings_key(config)
    # Where and how a run goes does not change its result, nor its key ...
    for change in ({"workdir": "elsewhere"}, {"workers": 0}, {"progress": False}, {"resume": True}):
        assert settings_key(replace(config, **change)) == key, change
    # ... nor the settings of a phase that does not run ...
    assert settings_key(replace(config, rl=RLConfig(iterations=3))) == key
    # ... while every setting that does changes it, a default split seed made explicit too.
    assert settings_key(replace(config, split_seed=0)) == key
    for change in (
        {"seed": 1},
        {"split_seed": 1},
        {"budget_scale": 0.5},
        {"td3": TD3Config(average_tau=0.05)},
        {"objective": "rl"},
    ):
        assert settings_key(replace(config, **change)) != key, change
    assert KEY_VERSION >= 2  # keys of the schema before this one are never found
