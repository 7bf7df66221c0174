"""Baselines at tiny budgets: the context-conditioned policy and MAML produce finite numbers."""

from __future__ import annotations

import numpy as np
import torch

from meta_rl.agents.baselines import evaluate_context_policy, train_context_policy
from meta_rl.envs import get_family
from meta_rl.maml import (
    MamlConfig,
    adapt_params,
    maml_adapt_and_evaluate,
    meta_train,
    pg_loss,
    sample_episodes,
)
from meta_rl.policy_spec import PolicyArch, PolicySpec, build_policy
from meta_rl.recipes import recipe_for


def test_context_policy_sees_descriptor_and_runs():
    family = get_family("Pendulum")
    recipe = recipe_for("pendulum").scaled(0.01)
    tasks = family.task_space.sample(3, 0)
    model = train_context_policy(family, tasks, recipe, steps=256, seed=0)
    assert model.observation_space.shape == (3 + family.task_space.dim,)
    ret = evaluate_context_policy(model, family, tasks[0], episodes=1, seed=0)
    assert np.isfinite(ret)


def test_maml_inner_step_differentiates_through_the_update():
    family = get_family("CartPole")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    spec = PolicySpec(arch)
    theta = spec.flatten(build_policy(arch)).requires_grad_(True)
    rng = np.random.default_rng(0)
    batch = sample_episodes(
        spec, theta.detach(), family, {}, episodes=3, gamma=0.99, rng=rng, max_steps=20
    )
    assert batch.obs.shape[0] == 3 and batch.mask.sum() > 0
    adapted = adapt_params(spec, theta, batch, 0.1, create_graph=True)
    assert not torch.equal(adapted.detach(), theta.detach())
    pg_loss(spec, adapted, batch).backward()
    assert (
        theta.grad is not None and torch.isfinite(theta.grad).all() and theta.grad.abs().sum() > 0
    )


def test_maml_meta_trains_and_adapts_at_a_tiny_budget():
    family = get_family("Pendulum")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    config = MamlConfig(meta_batch=2, episodes=2, max_steps=10)
    tasks = family.task_space.sample(2, 1)
    theta = meta_train(family, tasks, arch, config, steps=60, seed=0)
    before, after, used = maml_adapt_and_evaluate(
        PolicySpec(arch), theta, family, tasks[0], config, episodes=1, seed=0
    )
    assert np.isfinite(before) and np.isfinite(after) and used == 20
