"""The ``rl`` objective (PPO through the mapping), objective combinations, and DAgger."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from meta_rl.envs import get_family
from meta_rl.mapping.network import MappingConfig, MappingNetwork
from meta_rl.mapping.policy import PolicyArch, PolicySpec, build_policy
from meta_rl.objectives.on_policy import Divergence, RLConfig, RLPhase, collect, ppo_loss, train_rl
from meta_rl.objectives.supervised import DistillData, DistillPhase
from meta_rl.objectives.task_envs import TaskEnvs
from meta_rl.training.config import TrainConfig
from meta_rl.training.trainer import Trainer, train

from .conftest import TINY_TRAIN, mean_return


def _cartpole(seed: int = 0):
    family = get_family("CartPole")
    torch.manual_seed(seed)
    arch = PolicyArch.for_env(family.make(), pi=(32,), vf=(32,))
    spec = PolicySpec(arch)
    tasks = family.task_space.sample(4, seed)
    descriptors = torch.as_tensor(np.stack([family.task_space.to_descriptor(t) for t in tasks]))
    network = MappingNetwork(
        family.task_space.dim, spec.flatten(build_policy(arch)), MappingConfig(hidden=(16,), rank=4)
    )
    return family, spec, tasks, descriptors, network


def _mean_return(spec, network, family, tasks, descriptors) -> float:
    return mean_return(spec, network, family, tasks, descriptors, episodes=2)


def test_rl_improves_the_return_of_a_tiny_problem():
    family, spec, tasks, descriptors, network = _cartpole()
    before = _mean_return(spec, network, family, tasks, descriptors)
    config = RLConfig(iterations=12, tasks_per_iteration=4, n_steps=256, lr=1e-3, clip_range=0.2)
    seen: list[int] = []
    steps = train_rl(
        spec,
        network,
        family,
        tasks,
        descriptors,
        config,
        gamma=0.98,
        gae_lambda=0.8,
        seed=0,
        on_iteration=lambda it, s, stats: seen.append(s),
    )
    after = _mean_return(spec, network, family, tasks, descriptors)
    assert steps == 12 * 4 * 256 and seen[-1] == steps and len(seen) == 12
    assert after > before + 50, (before, after)  # an untrained CartPole policy: about 10


def test_gradients_reach_the_mapping_through_predicted_parameters():
    family, spec, tasks, descriptors, network = _cartpole()
    envs = TaskEnvs(family, tasks[:3])
    assert envs.vector is not None  # CartPole steps as one batched env
    config = RLConfig(n_steps=32, minibatches=1)
    try:
        roll = collect(
            spec, network, descriptors[:3], envs, config, 0.99, 0.95, torch.Generator(), seed=0
        )
    finally:
        envs.close()
    assert roll.obs.shape == (3, 32, 4) and roll.actions.shape == (3, 32)
    params = network(descriptors[:3])
    loss, stats = ppo_loss(
        spec, params, roll.obs, roll.actions, roll.log_prob, roll.advantages, roll.returns, config
    )
    # The first pass reproduces the rollout's own log-probabilities: the ratio starts at 1.
    assert stats["approx_kl"] == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    grads = {n: p.grad for n, p in network.named_parameters()}
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for g in grads.values())
    assert all(not b.requires_grad for b in network.buffers())  # the base is not trained


@pytest.mark.parametrize("batched", [True, False])
def test_rl_is_seeded(batched):
    runs = []
    for _ in range(2):
        family, spec, tasks, descriptors, network = _cartpole()
        config = RLConfig(iterations=2, tasks_per_iteration=3, n_steps=32, minibatches=2)
        train_rl(
            spec,
            network,
            family,
            tasks,
            descriptors,
            config,
            gamma=0.98,
            gae_lambda=0.8,
            seed=5,
            batched=batched,
        )
        runs.append(network.state_dict())
    for key, value in runs[0].items():
        assert torch.equal(value, runs[1][key]), key


def test_rl_stops_on_a_non_finite_loss_and_keeps_the_weights():
    family, spec, tasks, descriptors, network = _cartpole()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    bad = descriptors.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(Divergence, match="rl objective"):
        train_rl(
            spec,
            network,
            family,
            tasks,
            bad,
            RLConfig(iterations=1, n_steps=16, minibatches=1),
            gamma=0.99,
            gae_lambda=0.95,
            seed=0,
        )
    for key, value in network.state_dict().items():
        assert torch.equal(value, before[key]), key


TINY = {
    **TINY_TRAIN,
    "rl": RLConfig(iterations=2, tasks_per_iteration=2, n_steps=64, minibatches=2, eval_every=1),
}


def test_rl_objective_trains_without_experts(tmp_path):
    trained, log = train(TrainConfig(objective="rl", workdir=tmp_path, **TINY))
    assert log["env_steps"]["experts"] == 0 and not log["experts"]  # no expert trained
    assert not list(tmp_path.rglob("expert-*"))
    phases = [h.get("phase") for h in log["mapping_history"]]
    assert phases == [None, "rl", "rl"]
    assert trained.objective == "rl" and trained.info["env_steps"] > 2 * 2 * 64


def test_combined_objective_runs_both_phases(tmp_path):
    trained, log = train(TrainConfig(objective="distill+rl", workdir=tmp_path, **TINY))
    phases = [h.get("phase") for h in log["mapping_history"]]
    assert phases == [None, "distill", "distill", "rl", "rl"]
    best = max(log["mapping_history"], key=lambda h: (h["val_return"], h["round"]))
    assert trained.info["selected_round"] == best["round"]  # the last of tied rounds


def test_a_tie_on_validation_keeps_the_later_more_trained_network(tmp_path, monkeypatch):
    # Every round at the cap (as CartPole's 500): the last round's network is kept.
    monkeypatch.setattr(Trainer, "validation_score", lambda self: 500.0)
    states: list[dict[str, torch.Tensor]] = []  # the network before and after training
    real_run = RLPhase.run

    def spy(self, start, after_unit):
        network = self.context.network
        states.append({k: v.clone() for k, v in network.state_dict().items()})
        real_run(self, start, after_unit)
        states.append({k: v.clone() for k, v in network.state_dict().items()})

    monkeypatch.setattr(RLPhase, "run", spy)
    trained, log = train(TrainConfig(objective="rl", workdir=tmp_path, **TINY))
    assert [h["round"] for h in log["mapping_history"]] == [0, 1, 2]
    assert trained.info["selected_round"] == 2
    start, final = states
    assert any(not torch.equal(start[k], final[k]) for k in final)  # training moved it
    assert all(torch.equal(v, final[k]) for k, v in trained.network.state_dict().items())


def test_dagger_relabels_states_of_the_predicted_policies(tmp_path, monkeypatch):
    visited: list[torch.Tensor] = []
    real_relabel = DistillPhase.relabel

    def spy_relabel(self, params, tasks, seed):
        visited.extend(params.detach().clone())
        return real_relabel(self, params, tasks, seed)

    added: list[tuple[torch.Tensor, list[np.ndarray]]] = []
    real_add = DistillData.add

    def spy_add(self, spec, experts, states):
        added.append((experts.clone(), [s.copy() for s in states]))
        return real_add(self, spec, experts, states)

    monkeypatch.setattr(DistillPhase, "relabel", spy_relabel)
    monkeypatch.setattr(DistillData, "add", spy_add)
    train(TrainConfig(objective="distill", workdir=tmp_path, **TINY))
    n = TINY["n_train"]
    assert len(visited) == 2 * n and len(added) == 2  # experts' states, then one DAgger round
    expert_params = torch.stack(visited[:n])
    # Every batch is labelled by the experts ...
    assert all(torch.equal(labels, expert_params) for labels, _ in added)
    # ... and the second one holds states the *predicted* policies visited, not the experts.
    dagger = torch.stack(visited[n:])
    assert not torch.allclose(dagger, expert_params)
    assert all(len(s) == TINY["states_per_task"] for s in added[1][1])


def test_rl_config_errors():
    with pytest.raises(ValueError, match=r"rl\.iterations"):
        RLConfig(iterations=0)
    with pytest.raises(ValueError, match="minibatches"):
        RLConfig(n_steps=4, minibatches=8)
    for bad in ({"eval_every": 0}, {"iterations": 2.5}, {"gamma": 5.0}, {"gae_lambda": -1.0}):
        with pytest.raises(ValueError, match="rl"):
            RLConfig(**bad)
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="rl+magic")
    assert replace(RLConfig(), lr=0.5).lr == 0.5


def test_per_task_envs_never_share_start_states_across_consecutive_seeds():
    family = get_family("Pendulum")
    envs = TaskEnvs(family, family.task_space.sample(4, 0), batched=False)
    try:
        first, second = envs.reset(7), envs.reset(8)
    finally:
        envs.close()
    assert not any(np.allclose(a, b) for a in first for b in second)
    again = TaskEnvs(family, family.task_space.sample(4, 0), batched=False)
    try:
        np.testing.assert_array_equal(again.reset(7), first)  # seeded
    finally:
        again.close()
