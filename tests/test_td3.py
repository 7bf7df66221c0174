"""The ``td3`` objective: TD3 with the mapping as its actor."""

from __future__ import annotations

import pytest
import torch

import meta_rl.train as train_module
from meta_rl.checkpoint import TrainedMapping
from meta_rl.envs import get_family
from meta_rl.mapping import MappingConfig, MappingNetwork
from meta_rl.policy_spec import PolicyArch, PolicySpec
from meta_rl.td3 import TD3Config, TD3Learner
from meta_rl.train import TrainConfig, train

from .conftest import TINY_OFF_POLICY, TINY_TRAIN, Drift, mean_return, toy_problem


def _drift():
    return toy_problem(Drift, (-0.4, -0.1, 0.2, 0.45))


def _mean_return(spec, network, family, tasks, descriptors) -> float:
    return mean_return(spec, network, family, tasks, descriptors, episodes=5)


SMALL = TD3Config(**TINY_OFF_POLICY)


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


def test_td3_refuses_discrete_actions():
    family = get_family("CartPole")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    spec = PolicySpec(arch)
    network = MappingNetwork(family.task_space.dim, torch.zeros(spec.numel), MappingConfig())
    descriptors = torch.zeros(2, family.task_space.dim)
    tasks = family.task_space.sample(2, 0)
    with pytest.raises(ValueError, match=r"Box.*use sacd, rl or distill"):
        TD3Learner(spec, network, family, tasks, descriptors, TD3Config(), seed=0)


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
    assert trained.objective == "td3"
    assert [h["td3_env_steps"] for h in log["mapping_history"][1:]] == [3 * 20, 2 * 3 * 20]


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
