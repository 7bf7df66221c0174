"""The ``td3`` objective: TD3 with the mapping as its actor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import meta_rl.train as train_module
from meta_rl.checkpoint import TrainedMapping
from meta_rl.divergence import Divergence
from meta_rl.envs import Feature, get_family, make_family
from meta_rl.mapping import MappingConfig, MappingNetwork
from meta_rl.policy_spec import PolicyArch, PolicySpec, build_policy
from meta_rl.td3 import ReplayBuffer, TD3Config, TD3Learner
from meta_rl.train import TrainConfig, train

from .conftest import TINY_TRAIN, Drift, mean_return


def _drift(seed: int = 0):
    try:
        family = get_family("TD3Drift")
    except ValueError:
        family = make_family(
            "TD3Drift",
            Drift,
            [Feature(name="rate", default=0.0, low=-0.5, high=0.5)],
            apply=lambda env, task: setattr(env, "rate", task["rate"]),
            max_episode_steps=10,
        )
    torch.manual_seed(seed)
    arch = PolicyArch.for_env(family.make(), pi=(16,), vf=(16,))
    spec = PolicySpec(arch)
    tasks = [{"rate": r} for r in (-0.4, -0.1, 0.2, 0.45)]
    descriptors = torch.as_tensor(np.stack([family.task_space.to_descriptor(t) for t in tasks]))
    network = MappingNetwork(
        family.task_space.dim, spec.flatten(build_policy(arch)), MappingConfig(hidden=(16,), rank=4)
    )
    return family, spec, tasks, descriptors, network


def _mean_return(spec, network, family, tasks, descriptors) -> float:
    return mean_return(spec, network, family, tasks, descriptors, episodes=5)


SMALL = TD3Config(
    tasks=None,
    iterations=2,
    tasks_per_iteration=3,
    n_steps=20,
    warmup_iterations=1,
    updates_per_step=0.5,
    batch_tasks=2,
    batch_states=8,
    eval_every=1,
)


def test_td3_improves_the_return_of_a_tiny_problem():
    family, spec, tasks, descriptors, network = _drift()
    before = _mean_return(spec, network, family, tasks, descriptors)
    config = TD3Config(
        iterations=12,
        tasks_per_iteration=4,
        n_steps=50,
        warmup_iterations=2,
        updates_per_step=1.0,
        batch_tasks=4,
        batch_states=32,
        actor_lr=1e-3,
        gamma=0.9,
    )
    seen: list[int] = []
    learner = TD3Learner(spec, network, family, tasks, descriptors, config, seed=0)
    steps = learner.train(on_iteration=lambda it, s, stats: seen.append(s))
    after = _mean_return(spec, network, family, tasks, descriptors)
    assert steps == 12 * 4 * 50 and seen[-1] == steps and len(seen) == 12
    # A policy that cancels the drift keeps |x| near 0 after the first step: about -0.5.
    assert after > before + 1.0 and after > -2.0, (before, after)


def test_the_actor_loss_reaches_the_mapping_through_predicted_parameters_after_warmup():
    family, spec, tasks, descriptors, network = _drift()
    start = {k: v.clone() for k, v in network.state_dict().items()}
    learner = TD3Learner(spec, network, family, tasks, descriptors, SMALL, seed=0)
    changed: list[bool] = []
    critic_before = [p.clone() for p in learner.critic.parameters()]

    def record(iteration: int, steps: int, stats: dict) -> None:
        changed.append(any(not torch.equal(v, start[k]) for k, v in network.state_dict().items()))

    learner.train(on_iteration=record)
    # Warm-up: the critic learns alone; then the mapping moves (the base buffer never).
    assert changed == [False, True]
    assert torch.equal(network.base, start["base"])
    assert any(
        not torch.equal(a, b)
        for a, b in zip(critic_before, learner.critic.parameters(), strict=True)
    )


def test_td3_is_seeded():
    runs = []
    for _ in range(2):
        family, spec, tasks, descriptors, network = _drift()
        TD3Learner(spec, network, family, tasks, descriptors, SMALL, seed=5).train()
        runs.append(network.state_dict())
    for key, value in runs[0].items():
        assert torch.equal(value, runs[1][key]), key


def test_td3_resumes_exactly_from_its_state():
    family, spec, tasks, descriptors, network = _drift()
    config = TD3Config(**{**SMALL.__dict__, "iterations": 3})
    reference = TD3Learner(spec, network, family, tasks, descriptors, config, seed=2)
    reference.train()

    family, spec, tasks, descriptors, first = _drift()
    learner = TD3Learner(spec, first, family, tasks, descriptors, config, seed=2)
    saved: dict = {}

    def stop_after_two(iteration: int, steps: int, stats: dict) -> None:
        if iteration == 2:
            saved.update(network=first.state_dict(), tensors=learner.state_tensors())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        learner.train(on_iteration=stop_after_two)
    family, spec, tasks, descriptors, second = _drift()
    second.load_state_dict(saved["network"])
    again = TD3Learner(spec, second, family, tasks, descriptors, config, seed=2)
    again.load_state(saved["tensors"])
    assert again.train(start_iteration=2) == 3 * 20
    for key, value in network.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key


def test_td3_refuses_discrete_actions():
    family = get_family("CartPole")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    spec = PolicySpec(arch)
    network = MappingNetwork(family.task_space.dim, torch.zeros(spec.numel), MappingConfig())
    descriptors = torch.zeros(2, family.task_space.dim)
    tasks = family.task_space.sample(2, 0)
    with pytest.raises(ValueError, match=r"Box.*use sacd, rl or distill"):
        TD3Learner(spec, network, family, tasks, descriptors, TD3Config(), seed=0)


def test_td3_stops_on_a_non_finite_prediction():
    family, spec, tasks, descriptors, network = _drift()
    bad = descriptors.clone()
    bad[0, 0] = float("nan")
    learner = TD3Learner(spec, network, family, tasks, bad, SMALL, seed=0)
    with pytest.raises(Divergence, match="td3 objective") as err:
        learner.train()
    assert err.value.env_steps == 0


def test_replay_buffer_keeps_tasks_apart_and_samples_within_each():
    buffer = ReplayBuffer(n_tasks=3, capacity=4, obs_dim=1, action_dim=1)
    for step in range(6):  # task 0 and 2 get six transitions each: their rings wrap
        tasks = torch.tensor([0, 2])
        buffer.add(
            tasks,
            obs=torch.tensor([[step], [100 + step]], dtype=torch.float32),
            actions=torch.zeros(2, 1),
            rewards=torch.zeros(2),
            next_obs=torch.zeros(2, 1),
            terminated=torch.zeros(2),
        )
    assert buffer.size.tolist() == [4, 0, 4]
    batch = buffer.sample(5, 50, torch.Generator().manual_seed(0))
    assert sorted(batch["task"].tolist()) == [0, 2]  # task 1 has nothing yet
    for row, task in enumerate(batch["task"].tolist()):
        values = set(batch["obs"][row, :, 0].tolist())
        assert values == {float(s + 100 * (task == 2)) for s in (2, 3, 4, 5)}


def test_td3_config_errors():
    with pytest.raises(ValueError, match=r"td3\.iterations"):
        TD3Config(iterations=0)
    with pytest.raises(ValueError, match=r"td3\.tau"):
        TD3Config(tau=1.5)
    with pytest.raises(ValueError, match=r"td3\.gamma"):
        TD3Config(gamma=0.0)
    with pytest.raises(ValueError, match=r"td3\.action_noise"):
        TD3Config(action_noise=-0.1)


def test_td3_objective_trains_without_experts(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the td3 objective trained experts")

    monkeypatch.setattr(train_module, "train_experts", refuse)
    trained, log = train(TrainConfig(objective="td3", workdir=tmp_path, td3=SMALL, **TINY_TRAIN))
    phases = [h.get("phase") for h in log["mapping_history"]]
    assert phases == [None, "td3", "td3"]
    assert trained.objective == "td3" and trained.info["env_steps"] > 2 * 3 * 20


def test_replay_buffer_grows_as_it_fills():
    buffer = ReplayBuffer(n_tasks=2, capacity=5000, obs_dim=2, action_dim=1)
    row = {
        "obs": torch.ones(1, 2),
        "actions": torch.ones(1, 1),
        "rewards": torch.ones(1),
        "next_obs": torch.ones(1, 2),
        "terminated": torch.zeros(1),
    }
    assert buffer.obs.shape == (2, 0, 2)
    for _ in range(1025):
        buffer.add(torch.tensor([1]), **row)
    assert buffer.obs.shape == (2, 2048, 2) and buffer.size.tolist() == [0, 1025]
    assert buffer.obs[1, :1025].eq(1).all() and buffer.obs[1, 1025:].eq(0).all()


def test_td3_draws_its_own_training_tasks_and_leaves_validation_and_test_alone(tmp_path):
    config = TrainConfig(
        objective="td3",
        workdir=tmp_path,
        td3=TD3Config(**{**SMALL.__dict__, "tasks": 10}),
        **TINY_TRAIN,
    )
    trained, log = train(config)
    assert log["td3_tasks"] == 10 and len(trained.info["split"]["train"]) == 3
    reference = get_family("Pendulum").task_space.split(3, 6, n_val=6, seed=0)
    assert trained.info["split"]["val"] == reference.val
    assert trained.info["split"]["test"] == reference.test
    # The checkpoint lists the tasks td3 trained on; the split's own come first.
    saved = TrainedMapping.load(trained.save(tmp_path / "m.safetensors"))
    assert len(saved.info["td3_tasks"]) == 10
    assert saved.info["td3_tasks"][:3] == reference.train
