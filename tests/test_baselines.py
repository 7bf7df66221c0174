"""Baselines at tiny budgets: the context-conditioned policies (PPO, SAC), the recurrent
policy and MAML produce finite numbers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from meta_rl.agents.baselines import (
    context_sac_state,
    evaluate_context_policy,
    evaluate_recurrent_policy,
    rebuild_context_sac,
    rebuild_recurrent_policy,
    recurrent_policy_state,
    train_context_policy,
    train_context_sac,
    train_recurrent_policy,
)
from meta_rl.benchmarks.maml import (
    MamlConfig,
    adapt_params,
    maml_adapt_and_evaluate,
    meta_train,
    outer_loss,
    sample_episodes,
)
from meta_rl.envs import get_family
from meta_rl.errors import ConfigError
from meta_rl.infra.files import load_tensors, save_tensors
from meta_rl.mapping.policy import (
    PolicyArch,
    PolicySpec,
    action_distribution,
    action_log_prob,
    build_policy,
)
from meta_rl.training.recipes import recipe_for


def test_context_policy_sees_descriptor_and_runs():
    family = get_family("Pendulum")
    recipe = replace(recipe_for("pendulum").scaled(0.01), activation="relu")
    tasks = family.task_space.sample(3, 0)
    # The bar must not need SB3's optional ``rich``, which is not a dependency.
    model = train_context_policy(family, tasks, recipe, steps=256, seed=0, progress_bar=True)
    assert model.observation_space.shape == (3 + family.task_space.dim,)
    # The recipe's policy, the mapping's, is the context policy's too.
    assert model.policy.activation_fn is torch.nn.ReLU
    ret = evaluate_context_policy(model, family, tasks[0], episodes=1, seed=0)
    assert np.isfinite(ret)


def test_context_sac_sees_the_descriptor_learns_and_reloads_without_pickle(tmp_path):
    family = get_family("Pendulum")
    recipe = recipe_for("pendulum")
    tasks = family.task_space.sample(3, 0)
    model = train_context_sac(family, tasks, recipe, steps=200, seed=0)
    assert model.observation_space.shape == (3 + family.task_space.dim,)
    assert model.num_timesteps == 200 and model.learning_rate == recipe.sac["learning_rate"]
    assert model._n_updates > 0  # a budget under SAC's learning_starts still learns
    state, meta = context_sac_state(model)
    save_tensors(tmp_path / "context-sac.safetensors", state, meta)
    tensors, loaded_meta = load_tensors(tmp_path / "context-sac.safetensors")
    policy = rebuild_context_sac(family, tasks, tensors, loaded_meta)
    own = evaluate_context_policy(model, family, tasks[0], episodes=2, seed=0)
    again = evaluate_context_policy(policy, family, tasks[0], episodes=2, seed=0)
    assert np.isfinite(own) and own == again
    with pytest.raises(ConfigError, match="context-conditioned SAC needs continuous actions"):
        train_context_sac(get_family("CartPole"), [{}], recipe_for("cartpole"), steps=64, seed=0)


def _stopping_save(monkeypatch, baselines, after: int) -> list[int]:
    """Make the ``after``-th resume save of a context SAC run raise KeyboardInterrupt, as a
    stop would; returns the env steps of every save."""
    save = baselines._save_sac_state
    saved: list[int] = []

    def save_then_stop(model, *args):
        save(model, *args)
        saved.append(model.num_timesteps)
        if len(saved) == after:
            raise KeyboardInterrupt

    monkeypatch.setattr(baselines, "_save_sac_state", save_then_stop)
    return saved


def _same_sac(a, b) -> bool:
    own, other = a.policy.state_dict(), b.policy.state_dict()
    return own.keys() == other.keys() and all(torch.equal(own[k], other[k]) for k in own)


@pytest.mark.parametrize(
    ("sac", "stop_after"),
    [
        # Episodes (200 steps) end inside chunks, and the buffer wraps before the stop.
        ({"learning_rate": 1e-3, "buffer_size": 300}, 2),
        # A fixed entropy coefficient, state-dependent noise, and rollouts of 32 steps
        # that end past the chunks' ends; stopped after the last chunk was saved.
        ({"train_freq": 32, "gradient_steps": 8, "ent_coef": 0.1, "use_sde": True}, 3),
    ],
)
def test_context_sac_resumed_after_a_stop_ends_as_a_run_never_stopped(
    monkeypatch, tmp_path, sac, stop_after
):
    import meta_rl.agents.baselines as baselines

    family = get_family("Pendulum")
    recipe = replace(recipe_for("pendulum"), sac=sac)
    tasks = family.task_space.sample(3, 0)
    run = {"steps": 750, "seed": 0, "chunk": 250}  # past learning_starts (100): it learns
    never_stopped = train_context_sac(family, tasks, recipe, **run)
    assert never_stopped._episode_num > 0 and never_stopped._n_updates > 0

    resume = tmp_path / "context-sac.resume.safetensors"
    saved = _stopping_save(monkeypatch, baselines, after=stop_after)
    with pytest.raises(KeyboardInterrupt):
        train_context_sac(family, tasks, recipe, resume=resume, **run)
    assert len(saved) == stop_after and resume.exists()
    if "buffer_size" in sac:
        assert saved[-1] > sac["buffer_size"]  # the saved buffer had wrapped
    monkeypatch.undo()

    learned: list[int] = []
    real_learn = type(never_stopped).learn

    def counting_learn(self, total_timesteps, *args, **kwargs):
        learned.append(total_timesteps)
        return real_learn(self, total_timesteps, *args, **kwargs)

    monkeypatch.setattr(type(never_stopped), "learn", counting_learn)
    resumed = train_context_sac(family, tasks, recipe, resume=resume, **run)
    assert len(learned) == 3 - stop_after  # only the chunks the stop left
    assert resumed.num_timesteps == never_stopped.num_timesteps >= 750
    assert resumed._n_updates == never_stopped._n_updates
    assert resumed._episode_num == never_stopped._episode_num
    assert _same_sac(never_stopped, resumed)
    if never_stopped.ent_coef_optimizer is not None:
        assert torch.equal(never_stopped.log_ent_coef, resumed.log_ent_coef)
    # The file holds the finished run now: the same call returns it without learning.
    learned.clear()
    finished = train_context_sac(family, tasks, recipe, resume=resume, **run)
    assert learned == [] and _same_sac(finished, never_stopped)
    for other in ({"seed": 1}, {"steps": 500}, {"chunk": 125}):
        with pytest.raises(ConfigError, match="other tasks, env steps, seed"):
            train_context_sac(family, tasks, recipe, resume=resume, **{**run, **other})


def test_context_sac_refuses_a_file_that_is_not_its_resume_file(tmp_path):
    family = get_family("Pendulum")
    tasks = family.task_space.sample(2, 0)
    other = tmp_path / "policy.safetensors"
    save_tensors(other, {"x": torch.zeros(1)}, {"steps": 1})
    with pytest.raises(ConfigError, match="is not a context SAC resume file"):
        train_context_sac(
            family, tasks, recipe_for("pendulum"), steps=64, seed=0, chunk=32, resume=other
        )
    memory_saving = replace(recipe_for("pendulum"), sac={"optimize_memory_usage": True})
    with pytest.raises(ConfigError, match="cannot resume with optimize_memory_usage"):
        train_context_sac(family, tasks, memory_saving, steps=64, seed=0)


def test_recurrent_policy_hides_the_task_and_reloads_without_pickle(tmp_path):
    family = get_family("Pendulum")
    recipe = recipe_for("pendulum")
    tasks = family.task_space.sample(3, 0)
    model = train_recurrent_policy(family, tasks, recipe, steps=256, seed=0)
    assert model.observation_space.shape == (3,)  # no descriptor: the task is hidden
    assert model.num_timesteps == 256  # a budget under one rollout shrinks the rollout
    state, meta = recurrent_policy_state(model)
    save_tensors(tmp_path / "recurrent.safetensors", state, meta)
    tensors, loaded_meta = load_tensors(tmp_path / "recurrent.safetensors")
    policy = rebuild_recurrent_policy(family, tasks, tensors, loaded_meta)
    own = evaluate_recurrent_policy(model.policy, family, tasks[0], episodes=2, seed=0)
    again = evaluate_recurrent_policy(policy, family, tasks[0], episodes=2, seed=0)
    assert np.isfinite(own) and own == again


def test_recurrent_policy_follows_a_recipe_that_normalises(tmp_path):
    """MountainCarContinuous's runs from scratch use VecNormalize and their own
    policy_kwargs: the recurrent baseline does too, and its rebuilt policy normalises its
    observations as training did."""
    family = get_family("MountainCarContinuous")
    recipe = recipe_for("MountainCarContinuous")
    tasks = family.task_space.sample(2, 0)
    model = train_recurrent_policy(family, tasks, recipe, steps=64, seed=0)
    norm = model.get_vec_normalize_env()
    assert norm is not None
    state, meta = recurrent_policy_state(model)
    save_tensors(tmp_path / "recurrent.safetensors", state, meta)
    tensors, loaded_meta = load_tensors(tmp_path / "recurrent.safetensors")
    policy = rebuild_recurrent_policy(family, tasks, tensors, loaded_meta)
    obs = np.array([-0.5, 0.01], dtype=np.float32)
    np.testing.assert_allclose(policy.meta_rl_obs_norm(obs), norm.normalize_obs(obs), rtol=1e-5)
    assert np.isfinite(evaluate_recurrent_policy(policy, family, tasks[0], episodes=1, seed=0))


def _cartpole_batch(theta: torch.Tensor, spec: PolicySpec, tasks: list, config: MamlConfig):
    return sample_episodes(
        spec,
        theta,
        get_family("CartPole"),
        tasks,
        episodes=3,
        config=config,
        generator=torch.Generator().manual_seed(0),
        seed=0,
    )


def test_maml_inner_step_is_reinforce_and_differentiates_through_the_update():
    family = get_family("CartPole")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    spec = PolicySpec(arch)
    theta = spec.flatten(build_policy(arch)).requires_grad_(True)
    config = MamlConfig(max_steps=20)
    tasks = family.task_space.sample(2, 0)
    batch = _cartpole_batch(theta, spec, tasks, config)
    assert batch.obs.shape[:2] == (2, 3 * 20) and 0 < batch.steps <= 2 * 3 * 20
    # At the sampling policy, the inner gradient is REINFORCE's: mean of grad log pi * A.
    adapted = adapt_params(spec, theta, batch, 0.1)
    logp = action_log_prob(
        spec, action_distribution(spec, spec.forward(theta, batch.obs[0])), batch.actions[0]
    )
    (reinforce,) = torch.autograd.grad(
        -(logp * batch.advantages[0]).sum() / batch.mask[0].sum(), theta
    )
    torch.testing.assert_close(adapted[0], theta.detach() - 0.1 * reinforce)
    # The outer loss reaches theta through the adapted parameters (second order).
    adapted = adapt_params(spec, theta, batch, 0.1, create_graph=True)
    assert adapted.requires_grad and not torch.equal(adapted[0].detach(), theta.detach())
    outer_loss(spec, adapted, batch, 0.2).backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()
    assert theta.grad.abs().sum() > 0


def test_maml_episodes_mask_finished_steps():
    family = get_family("CartPole")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    spec = PolicySpec(arch)
    theta = spec.flatten(build_policy(arch))
    batch = _cartpole_batch(theta, spec, [{}], MamlConfig(max_steps=200))
    # A random CartPole policy falls within 200 steps; the slots after are masked out.
    assert batch.steps < 3 * 200
    assert torch.all(batch.advantages[batch.mask == 0] == 0)
    lengths = batch.mask[0].reshape(3, -1).sum(1)
    assert np.allclose(batch.returns[0], lengths.numpy())  # CartPole pays 1 per step


def test_maml_meta_trains_and_adapts_at_a_tiny_budget():
    family = get_family("Pendulum")
    arch = PolicyArch.for_env(family.make(), pi=(8,), vf=(8,))
    config = MamlConfig(meta_batch=2, episodes=2, max_steps=10)
    tasks = family.task_space.sample(2, 1)
    history: list = []
    theta = meta_train(family, tasks, arch, config, steps=100, seed=0, history=history)
    assert len(history) == 2 and history[-1]["env_steps"] == 160
    again = meta_train(family, tasks, arch, config, steps=100, seed=0)
    assert torch.equal(theta, again)  # seeded
    before, after, used = maml_adapt_and_evaluate(
        PolicySpec(arch), theta, family, tasks[0], config, episodes=1, seed=0
    )
    assert np.isfinite(before) and np.isfinite(after) and used == 20
