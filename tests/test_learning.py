"""Learning checks: slow ones run by `make test-slow`; one fast check of the shipped mapping."""

from __future__ import annotations

import numpy as np
import pytest

from meta_rl.evaluation import evaluate_params
from meta_rl.mapping.checkpoint import TrainedMapping, shipped_mappings
from meta_rl.training.recipes import recipe_for

HEAVY_LONG = [
    {"m": 2.0, "l": 1.5, "g": 10.0, "max_torque": 2.0},
    {"m": 1.9, "l": 1.4, "g": 12.0, "max_torque": 2.5},
    {"m": 1.8, "l": 1.5, "g": 8.0, "max_torque": 2.2},
]


def _zero_shot_vs_default(
    mapping: TrainedMapping, tasks: list[dict[str, float]] = HEAVY_LONG
) -> tuple[float, float]:
    zero, default = [], []
    for task in tasks:
        zero.append(
            evaluate_params(
                mapping.spec, mapping.predict(task), mapping.family, task, episodes=5, seed=3
            )
        )
        default.append(
            evaluate_params(
                mapping.spec, mapping.base_params, mapping.family, task, episodes=5, seed=3
            )
        )
    return float(np.mean(zero)), float(np.mean(default))


def test_shipped_mappings_load():
    shipped = ("pendulum", "cartpole", "acrobot", "mountaincarcontinuous")
    assert set(shipped) <= set(shipped_mappings())
    for name in shipped:
        mapping = TrainedMapping.load(name)
        # Each is what `make pretrained` makes: the family's default objective.
        assert mapping.family_name.lower() == name
        assert mapping.objective == recipe_for(name).objective
        assert mapping.info["split"]["test"]
    # Pendulum's rl mapping, for tasks beyond td3's training range (README).
    rl = TrainedMapping.load("pendulum-rl")
    assert (rl.family_name, rl.objective) == ("Pendulum", "rl")


def test_shipped_pendulum_mapping_beats_default_expert_on_heavy_long_pendulums():
    zero, default = _zero_shot_vs_default(TrainedMapping.load("pendulum"))
    assert zero > default + 20, (zero, default)


def _half_budget_pendulum(tmp_path, objective: str, **settings):
    """A Pendulum mapping trained at half the recipe's budget (the slow checks)."""
    from meta_rl.training.config import TrainConfig
    from meta_rl.training.trainer import train

    config = TrainConfig(
        family="Pendulum",
        objective=objective,
        workdir=tmp_path,
        budget_scale=0.5,
        progress=False,
        **settings,
    )
    return train(config)[0]


@pytest.mark.slow
def test_trained_mapping_beats_default_expert_on_heavy_long_pendulums(tmp_path):
    trained = _half_budget_pendulum(tmp_path, "distill", n_train=12, rounds=3)
    zero, default = _zero_shot_vs_default(trained)
    assert zero > default + 20, (zero, default)


@pytest.mark.slow
def test_rl_objective_beats_default_expert_on_heavy_long_pendulums(tmp_path):
    from meta_rl.objectives.on_policy import RLConfig

    trained = _half_budget_pendulum(tmp_path, "rl", rl=RLConfig(iterations=150))
    zero, default = _zero_shot_vs_default(trained)
    assert zero > default + 20, (zero, default)


INTERIOR = [
    {"m": 1.3, "l": 1.0, "g": 12.0, "max_torque": 1.5},
    {"m": 1.0, "l": 1.2, "g": 9.0, "max_torque": 1.2},
    {"m": 1.5, "l": 0.8, "g": 11.0, "max_torque": 1.8},
]


@pytest.mark.slow
def test_td3_objective_beats_default_expert_inside_the_bounds(tmp_path):
    """td3 within the task space. On the heavy, long pendulums above, at the upper edges
    of ``m`` and ``l``, this half-budget td3 run scored -1,037 against the default
    expert's -867: it fails at the edges (see the README's extrapolation result)."""
    from meta_rl.objectives.td3 import TD3Config

    trained = _half_budget_pendulum(tmp_path, "td3", td3=TD3Config(iterations=15))
    zero, default = _zero_shot_vs_default(trained, INTERIOR)
    assert zero > default + 20, (zero, default)


@pytest.mark.slow
def test_maml_learns_cartpole_tasks():
    from meta_rl.benchmarks.maml import MamlConfig, maml_adapt_and_evaluate, meta_train
    from meta_rl.envs import get_family
    from meta_rl.mapping.policy import PolicyArch, PolicySpec

    family = get_family("CartPole")
    arch = PolicyArch.for_env(family.make(), pi=(64, 64), vf=(64, 64))
    split = family.task_space.split(12, 3, seed=0)
    history: list = []
    theta = meta_train(
        family, split.train, arch, MamlConfig(), steps=100_000, seed=0, history=history
    )
    assert history[0]["before"] < 50  # an untrained policy drops the pole at once
    scores = [
        maml_adapt_and_evaluate(
            PolicySpec(arch), theta, family, t, MamlConfig(), episodes=3, seed=1
        )
        for t in split.test
    ]
    assert np.mean([after for _, after, _ in scores]) > 150


@pytest.mark.slow
def test_mountain_car_base_reaches_the_flag(tmp_path):
    """MountainCarContinuous's base (rl-zoo3's gSDE and VecNormalize, folded into plain
    parameters) drives to the flag; plain PPO stood still there (-0.0002 on every task)."""
    from meta_rl.envs import get_family
    from meta_rl.mapping.policy import PolicyArch, PolicySpec
    from meta_rl.training.experts import train_base

    family = get_family("MountainCarContinuous")
    recipe = recipe_for(family.name)
    arch = PolicyArch.for_env(
        family.make(), pi=recipe.pi, vf=recipe.vf, log_std_init=recipe.log_std_init
    )
    base, _ = train_base(family, recipe, arch, seed=0, cache_dir=None, progress=False)
    tasks = [family.task_space.default_task(), *family.task_space.sample(2, 1)]
    returns = [
        evaluate_params(PolicySpec(arch), base, family, task, episodes=3, seed=2) for task in tasks
    ]
    assert min(returns) > 80, returns  # +100 at the flag, minus the throttle's cost
