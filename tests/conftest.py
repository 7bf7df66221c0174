"""Shared fixtures: every built-in family, tiny budgets, one torch thread."""

from __future__ import annotations

import inspect
import os
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import settings

import meta_rl  # noqa: F401  (registers the families)
from meta_rl.envs import families
from meta_rl.mapping.network import MappingConfig

torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*settotalmass.*")

# Property tests draw the same examples on every run (CI is reproducible);
# HYPOTHESIS_PROFILE=explore draws fresh ones, to search for new failures.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

FAMILY_NAMES = sorted(families())


TINY_PIPELINE = {
    "budget_scale": 0.001,
    "n_train": 3,
    "rounds": 1,
    "steps_per_round": 5,
    "states_per_task": 50,
    "batch_states": 16,
    "mapping": MappingConfig(hidden=(16,), rank=4),
}
"""The smallest whole pipeline (benchmark and selection runs in seconds)."""

TINY_TRAIN = {
    "family": "Pendulum",
    "workers": 0,
    "budget_scale": 0.001,
    "n_train": 3,
    "rounds": 2,
    "steps_per_round": 5,
    "states_per_task": 50,
    "batch_states": 16,
    "mapping": MappingConfig(hidden=(16,), rank=4),
    "progress": False,
    "keep_going": True,  # its base of 200 env steps is no better than random play
}
"""A Pendulum training of a few seconds (``tiny_mapping``'s settings)."""

TINY_OFF_POLICY = {
    "tasks": None,
    "iterations": 2,
    "tasks_per_iteration": 3,
    "n_steps": 20,
    "warmup_iterations": 1,
    "updates_per_step": 0.5,
    "batch_tasks": 2,
    "batch_states": 8,
    "eval_every": 1,
}
"""Two iterations of ``td3`` or ``sacd`` on three tasks (the critic alone in the first)."""


@pytest.fixture(params=FAMILY_NAMES)
def family(request: pytest.FixtureRequest):
    return families()[request.param]


@pytest.fixture(scope="session")
def tiny_mapping(tmp_path_factory: pytest.TempPathFactory):
    """A Pendulum mapping trained end to end at a tiny budget, saved as a checkpoint."""
    from meta_rl.training.config import TrainConfig
    from meta_rl.training.trainer import train

    workdir = tmp_path_factory.mktemp("runs")
    config = TrainConfig(objective="distill", workdir=workdir, **TINY_TRAIN)
    trained, log = train(config)
    path = trained.save(workdir / "tiny.safetensors")
    return path, trained, log, config


class Drift(gym.Env):
    """A toy env for a toy family: the state drifts by ``rate`` per step and the action
    pushes it back, so the best action (cancel the state and the drift) depends on the
    task. The state is held within +-5."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self):
        self.rate = 0.0
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1, 1))
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + self.rate + float(action[0]), -5, 5))
        return np.array([self.x], np.float32), -abs(self.x), False, False, {}


class Steer(Drift):
    """Drift with three discrete actions: push by -0.5, 0 or +0.5."""

    action_space = gym.spaces.Discrete(3)

    def step(self, action):
        return super().step([0.5 * (int(action) - 1)])


def toy_problem(env_class: type[gym.Env], rates: tuple[float, ...], seed: int = 0):
    """A toy family of ``env_class`` (its feature: the drift ``rate`` in [-0.5, 0.5]),
    tasks of ``rates``, and an untrained mapping of a small policy: ``(family, spec,
    tasks, descriptors, network)``."""
    from meta_rl.envs import Feature, get_family, make_family
    from meta_rl.mapping.network import MappingNetwork
    from meta_rl.mapping.policy import PolicyArch, PolicySpec, build_policy

    name = f"Toy{env_class.__name__}"
    try:
        family = get_family(name)
    except ValueError:
        family = make_family(
            name,
            env_class,
            [Feature(name="rate", default=0.0, low=-0.5, high=0.5)],
            apply=lambda env, task: setattr(env, "rate", task["rate"]),
            max_episode_steps=10,
        )
    torch.manual_seed(seed)
    arch = PolicyArch.for_env(family.make(), pi=(16,), vf=(16,))
    spec = PolicySpec(arch)
    tasks = [{"rate": r} for r in rates]
    descriptors = torch.as_tensor(np.stack([family.task_space.to_descriptor(t) for t in tasks]))
    network = MappingNetwork(
        family.task_space.dim, spec.flatten(build_policy(arch)), MappingConfig(hidden=(16,), rank=4)
    )
    return family, spec, tasks, descriptors, network


def mean_return(spec, network, family, tasks, descriptors, episodes: int) -> float:
    """Mean deterministic return of the policies ``network`` predicts for ``tasks``."""
    from meta_rl.evaluation import evaluate_params

    with torch.no_grad():
        params = network(descriptors)
    returns = [
        evaluate_params(spec, params[i], family, t, episodes=episodes, seed=1)
        for i, t in enumerate(tasks)
    ]
    return float(np.mean(returns))


def constructor_keywords(cls: type) -> list[str]:
    """The keywords ``cls(...)`` accepts: its ``__init__``'s and, where that passes
    ``**kwargs`` on, those of the next ``__init__`` up the MRO (MuJoCo envs' rendering
    keywords, say)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass in (gym.Env, object):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        names += [
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names
