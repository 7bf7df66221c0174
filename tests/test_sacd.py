"""The ``sacd`` objective: discrete soft actor-critic with the mapping as its actor."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import meta_rl.train as train_module
from meta_rl.checkpoint import TrainedMapping
from meta_rl.divergence import Divergence
from meta_rl.envs import Feature, get_family, make_family
from meta_rl.mapping import MappingConfig, MappingNetwork
from meta_rl.policy_spec import PolicyArch, PolicySpec, build_policy
from meta_rl.sacd import SACDConfig, SACDLearner
from meta_rl.train import TrainConfig, train

from .conftest import TINY_TRAIN, mean_return


class Steer(gym.Env):
    """A toy discrete env: the state drifts by ``rate`` per step, and the action pushes it
    by -0.5, 0 or +0.5; the reward is ``-|x|``. The best action depends on the state and
    the task's drift."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def __init__(self):
        self.rate = 0.0
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1, 1))
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + self.rate + 0.5 * (int(action) - 1), -5, 5))
        return np.array([self.x], np.float32), -abs(self.x), False, False, {}


def _steer(seed: int = 0):
    try:
        family = get_family("SACDSteer")
    except ValueError:
        family = make_family(
            "SACDSteer",
            Steer,
            [Feature(name="rate", default=0.0, low=-0.4, high=0.4)],
            apply=lambda env, task: setattr(env, "rate", task["rate"]),
            max_episode_steps=10,
        )
    torch.manual_seed(seed)
    arch = PolicyArch.for_env(family.make(), pi=(16,), vf=(16,))
    spec = PolicySpec(arch)
    tasks = [{"rate": r} for r in (-0.35, -0.1, 0.15, 0.35)]
    descriptors = torch.as_tensor(np.stack([family.task_space.to_descriptor(t) for t in tasks]))
    network = MappingNetwork(
        family.task_space.dim, spec.flatten(build_policy(arch)), MappingConfig(hidden=(16,), rank=4)
    )
    return family, spec, tasks, descriptors, network


SMALL = SACDConfig(
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


def test_sacd_improves_the_return_of_a_tiny_problem():
    family, spec, tasks, descriptors, network = _steer()
    before = mean_return(spec, network, family, tasks, descriptors, episodes=5)
    config = SACDConfig(
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
    learner = SACDLearner(spec, network, family, tasks, descriptors, config, seed=0)
    steps = learner.train(on_iteration=lambda it, s, stats: seen.append(s))
    after = mean_return(spec, network, family, tasks, descriptors, episodes=5)
    assert steps == 12 * 4 * 50 and seen[-1] == steps and len(seen) == 12
    # Holding |x| within a push of 0 is worth about -3 over ten steps; drifting, -10 or less.
    assert after > before + 1.0 and after > -4.0, (before, after)


def test_the_actor_loss_reaches_the_mapping_through_predicted_parameters_after_warmup():
    family, spec, tasks, descriptors, network = _steer()
    start = {k: v.clone() for k, v in network.state_dict().items()}
    learner = SACDLearner(spec, network, family, tasks, descriptors, SMALL, seed=0)
    alpha_before = float(learner.log_alpha.detach())
    changed: list[bool] = []

    def record(iteration: int, steps: int, stats: dict) -> None:
        changed.append(any(not torch.equal(v, start[k]) for k, v in network.state_dict().items()))

    learner.train(on_iteration=record)
    # Warm-up: the critic learns alone; then the mapping (not its base buffer) and alpha move.
    assert changed == [False, True]
    assert torch.equal(network.base, start["base"])
    assert float(learner.log_alpha.detach()) != alpha_before


def test_sacd_is_seeded_and_resumes_exactly_from_its_state():
    config = SACDConfig(**{**SMALL.__dict__, "iterations": 3})
    family, spec, tasks, descriptors, reference = _steer()
    uninterrupted = SACDLearner(spec, reference, family, tasks, descriptors, config, seed=2)
    uninterrupted.train()

    family, spec, tasks, descriptors, first = _steer()
    learner = SACDLearner(spec, first, family, tasks, descriptors, config, seed=2)
    saved: dict = {}

    def stop_after_two(iteration: int, steps: int, stats: dict) -> None:
        if iteration == 2:
            saved.update(network=first.state_dict(), tensors=learner.state_tensors())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        learner.train(on_iteration=stop_after_two)
    family, spec, tasks, descriptors, second = _steer()
    second.load_state_dict(saved["network"])
    again = SACDLearner(spec, second, family, tasks, descriptors, config, seed=2)
    again.load_state(saved["tensors"])
    assert again.train(start_iteration=2) == 3 * 20
    for key, value in reference.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert torch.equal(again.log_alpha, uninterrupted.log_alpha)


def test_sacd_refuses_box_actions_and_td3_refuses_discrete_ones():
    with pytest.raises(ValueError, match=r"sacd objective needs discrete actions.*use td3"):
        TrainConfig(family="Pendulum", objective="sacd")
    with pytest.raises(ValueError, match=r"td3 objective needs continuous.*use sacd"):
        TrainConfig(family="CartPole", objective="td3")


def test_sacd_stops_on_a_non_finite_prediction():
    family, spec, tasks, descriptors, network = _steer()
    bad = descriptors.clone()
    bad[0, 0] = float("nan")
    learner = SACDLearner(spec, network, family, tasks, bad, SMALL, seed=0)
    with pytest.raises(Divergence, match="sacd objective") as err:
        learner.train()
    assert err.value.env_steps == 0


def test_sacd_config_errors():
    with pytest.raises(ValueError, match=r"sacd\.iterations"):
        SACDConfig(iterations=0)
    with pytest.raises(ValueError, match=r"sacd\.target_entropy"):
        SACDConfig(target_entropy=1.5)
    with pytest.raises(ValueError, match=r"sacd\.init_alpha"):
        SACDConfig(init_alpha=0.0)


def test_sacd_objective_trains_cartpole_without_experts_and_records_its_tasks(
    tmp_path, monkeypatch
):
    def refuse(*args, **kwargs):
        raise AssertionError("the sacd objective trained experts")

    monkeypatch.setattr(train_module, "train_experts", refuse)
    settings = {**TINY_TRAIN, "family": "CartPole"}
    config = SACDConfig(**{**SMALL.__dict__, "tasks": 10})
    trained, log = train(TrainConfig(objective="sacd", workdir=tmp_path, sacd=config, **settings))
    phases = [h.get("phase") for h in log["mapping_history"]]
    assert phases == [None, "sacd", "sacd"]
    assert trained.objective == "sacd" and trained.info["env_steps"] > 2 * 3 * 20
    assert log["sacd_tasks"] == 10
    saved = TrainedMapping.load(trained.save(tmp_path / "m.safetensors"))
    assert len(saved.info["sacd_tasks"]) == 10
    assert saved.info["sacd_tasks"][:3] == trained.info["split"]["train"]
