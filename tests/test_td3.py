"""The ``td3`` objective: TD3 with the mapping as its actor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_rl.envs import get_family
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.network import MappingConfig, MappingNetwork
from meta_rl.mapping.policy import PolicyArch, PolicySpec
from meta_rl.objectives.off_policy import off_policy_tasks
from meta_rl.objectives.td3 import TD3Config, TD3Learner
from meta_rl.training.config import TrainConfig
from meta_rl.training.trainer import train

from .conftest import TINY_OFF_POLICY, TINY_TRAIN

SMALL = TD3Config(**TINY_OFF_POLICY)


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
    with pytest.raises(ValueError, match=r"td3\.average_tau must be a number of at least 0"):
        TD3Config(average_tau=-0.1)
    with pytest.raises(ValueError, match=r"td3\.average_tau must be at most 1"):
        TD3Config(average_tau=2.0)
    with pytest.raises(ValueError, match=r"td3\.gamma"):
        TD3Config(gamma=0.0)
    with pytest.raises(ValueError, match=r"td3\.action_noise"):
        TD3Config(action_noise=-0.1)
    with pytest.raises(ValueError, match=r"td3\.bc_coef"):
        TD3Config(bc_coef=-1.0)


def test_td3_objective_trains_without_experts(tmp_path):
    trained, log = train(TrainConfig(objective="td3", workdir=tmp_path, td3=SMALL, **TINY_TRAIN))
    phases = [h.get("phase") for h in log["mapping_history"]]
    assert phases == [None, "td3", "td3"]
    assert trained.objective == "td3"
    assert log["env_steps"]["experts"] == 0 and not log["experts"]  # no expert trained
    assert not list(tmp_path.rglob("expert-*"))
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
    assert saved.info["td3_tasks"] == off_policy_tasks(config, "td3")
    # The benchmark's baselines train on the same tasks, each once.
    assert saved.training_tasks == saved.info["td3_tasks"]


def _moved_from_base(bc_coef: float) -> float:
    """How far a few td3 iterations move a Pendulum mapping's action means from the
    base's on fixed states (mean squared difference)."""
    torch.manual_seed(0)
    family = get_family("Pendulum")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    spec = PolicySpec(arch)
    base = torch.randn(spec.numel) * 0.3
    network = MappingNetwork(family.task_space.dim, base, MappingConfig(hidden=(8,), rank=4))
    tasks = family.task_space.sample(4, 0)
    descriptors = torch.as_tensor(
        np.stack([family.task_space.to_descriptor(t) for t in tasks]), dtype=torch.float32
    )
    config = TD3Config(
        **{**TINY_OFF_POLICY, "iterations": 6, "warmup_iterations": 1, "actor_lr": 3e-3},
        bc_coef=bc_coef,
    )
    TD3Learner(spec, network, family, tasks, descriptors, config, seed=0).train()
    obs = torch.randn(len(tasks), 32, arch.obs_dim)
    with torch.no_grad():
        predicted = spec.action_mean(network(descriptors, spec.actor_rows), obs)
        anchor = spec.action_mean(base[spec.actor_rows].expand(len(tasks), -1), obs)
    return float(((predicted - anchor) ** 2).mean())


def test_bc_coef_holds_the_prediction_near_the_base():
    free, held = _moved_from_base(0.0), _moved_from_base(100.0)
    assert free > 0  # plain TD3 moves the actor
    assert held < free / 10
