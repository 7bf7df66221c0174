"""Policy parameter spec: flatten/unflatten, functional evaluation equals SB3, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_rl.infra.sb3 import make_agent
from meta_rl.mapping.policy import PolicyArch, PolicySpec, build_policy
from meta_rl.training.recipes import recipe_for

SMALL = {"pi": (16, 16), "vf": (16, 16)}


@pytest.fixture(params=["Pendulum", "CartPole", "LunarLanderContinuous", "Acrobot"])
def agent(request):
    from meta_rl.envs import get_family

    family = get_family(request.param)
    arch = PolicyArch.for_env(family.make(), **SMALL)
    recipe = recipe_for(family.name)
    settings = {**recipe.ppo, "n_steps": 32, "batch_size": 32}
    model = make_agent(family, None, arch, settings, n_envs=1, seed=0)
    return family, arch, model


def test_round_trip_and_sb3_actions_equal_functional(agent):
    family, arch, model = agent
    spec = PolicySpec(arch)
    vector = spec.flatten(model.policy)
    assert vector.shape == (spec.numel,)
    assert sum(p.numel() for p in model.policy.parameters()) == spec.numel
    fresh = build_policy(arch)
    spec.load_into(fresh, vector)
    torch.testing.assert_close(spec.flatten(fresh), vector)

    env = family.make()
    obs = np.stack([env.observation_space.sample() for _ in range(16)]).astype(np.float32)
    obs = np.clip(obs, -10, 10)
    out = spec.forward(vector, torch.as_tensor(obs))
    actions, _ = model.policy.predict(obs, deterministic=True)
    values = model.policy.predict_values(torch.as_tensor(obs)).squeeze(-1).detach()
    if arch.action_kind == "discrete":
        np.testing.assert_array_equal(out.mean.argmax(-1).numpy(), actions)
    else:
        low, high = env.action_space.low, env.action_space.high
        np.testing.assert_allclose(
            np.clip(out.mean.detach().numpy(), low, high), actions, atol=1e-6
        )
        torch.testing.assert_close(out.log_std, model.policy.log_std.detach())
    torch.testing.assert_close(out.value, values)


def test_batched_forward_matches_single(agent):
    _, arch, model = agent
    spec = PolicySpec(arch)
    v = spec.flatten(model.policy)
    batch = torch.stack([v, v * 1.1])
    obs = torch.randn(2, 5, arch.obs_dim)
    out = spec.forward(batch, obs)
    for i in range(2):
        single = spec.forward(batch[i], obs[i])
        torch.testing.assert_close(out.mean[i], single.mean)
        torch.testing.assert_close(out.value[i], single.value)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_action_mean_from_actor_rows_matches_the_full_forward(agent, activation):
    _, arch, _ = agent
    arch = PolicyArch(**{**arch.to_json(), "activation": activation})
    spec = PolicySpec(arch)
    batch = torch.stack([spec.flatten(build_policy(arch)) for _ in range(3)])
    obs = torch.randn(3, 5, arch.obs_dim)
    rows = spec.actor_rows
    assert len(rows) < spec.numel and len(set(rows.tolist())) == len(rows)
    torch.testing.assert_close(spec.action_mean(batch[:, rows], obs), spec.forward(batch, obs).mean)


def test_gradients_flow_through_functional_forward():
    arch = PolicyArch(obs_dim=3, action_kind="box", action_dim=1, **SMALL)
    spec = PolicySpec(arch)
    vector = spec.flatten(build_policy(arch)).requires_grad_(True)
    out = spec.forward(vector, torch.randn(8, 3))
    (out.mean.sum() + out.value.sum()).backward()
    assert vector.grad is not None and vector.grad.abs().sum() > 0


def test_mismatched_policy_is_a_clear_error():
    spec = PolicySpec(PolicyArch(obs_dim=3, action_kind="box", action_dim=1, **SMALL))
    other = build_policy(PolicyArch(obs_dim=3, action_kind="box", action_dim=1, pi=(8,), vf=(8,)))
    with pytest.raises(ValueError, match="does not match"):
        spec.load_into(other, torch.zeros(spec.numel))
    with pytest.raises(ValueError, match="non-finite"):
        spec.load_into(build_policy(spec.arch), torch.full((spec.numel,), float("nan")))
    with pytest.raises(ValueError, match="expected"):
        spec.unflatten(torch.zeros(spec.numel + 1))


def test_arch_checks_env_spaces():
    from meta_rl.envs import get_family

    arch = PolicyArch.for_env(get_family("Pendulum").make())
    with pytest.raises(ValueError, match="do not match"):
        arch.check_env(get_family("CartPole").make())
    with pytest.raises(ValueError, match="action_kind"):
        PolicyArch(obs_dim=3, action_kind="multi", action_dim=2)


@pytest.mark.parametrize("pi", [(16, 16), ()])
def test_plain_params_of_a_gsde_normalised_model_act_alike_on_raw_observations(pi):
    """A run from scratch with gSDE and VecNormalize (MountainCarContinuous's) becomes plain
    parameters whose mean action and value on raw observations equal the model's on
    normalised ones, and whose log_std is the architecture's initial one."""
    from meta_rl.envs import get_family
    from meta_rl.mapping.policy import plain_params

    family = get_family("MountainCarContinuous")
    arch = PolicyArch.for_env(family.make(), pi=pi, vf=(16,), log_std_init=-0.25)
    recipe = recipe_for(family.name)
    assert recipe.scratch["use_sde"] and recipe.scratch["normalize"]
    model = make_agent(family, None, arch, recipe.scratch, n_envs=recipe.n_envs, seed=0)
    model.learn(400)  # moves the normalisation statistics away from the identity
    norm = model.get_vec_normalize_env()
    assert not np.allclose(norm.obs_rms.var, 1.0)
    spec = PolicySpec(arch)
    # 400 steps near the valley give narrow statistics: the space's edges are clipped
    with pytest.warns(UserWarning, match="clips observations"):
        vector = plain_params(model, spec)

    # states within 3 standard deviations: VecNormalize clips at 10, which no fold can copy
    rng = np.random.default_rng(0)
    spread = rng.uniform(-3, 3, (64, arch.obs_dim)) * np.sqrt(norm.obs_rms.var)
    raw = (norm.obs_rms.mean + spread).astype(np.float32)
    seen = norm.normalize_obs(raw)
    out = spec.forward(vector, torch.as_tensor(raw))
    with torch.no_grad():
        mean = model.policy.get_distribution(torch.as_tensor(seen)).distribution.mean
        value = model.policy.predict_values(torch.as_tensor(seen)).squeeze(-1)
    torch.testing.assert_close(out.mean, mean, rtol=1e-4, atol=1e-5)
    scale = float(np.sqrt(norm.ret_rms.var + norm.epsilon))
    torch.testing.assert_close(out.value, value * scale, rtol=1e-4, atol=1e-4)
    # gSDE's time-correlated noise gives way to the plain policy's own initial std
    torch.testing.assert_close(out.log_std, torch.full((1,), arch.log_std_init))


def test_warm_start_refuses_settings_that_flat_parameters_cannot_carry():
    from meta_rl.envs import get_family

    family = get_family("MountainCarContinuous")
    arch = PolicyArch.for_env(family.make(), **SMALL)
    ppo = recipe_for(family.name).scratch
    params = PolicySpec(arch).flatten(build_policy(arch))
    with pytest.raises(ValueError, match="warm start needs plain PPO"):
        make_agent(family, None, arch, ppo, n_envs=1, seed=0, params=params)


def test_agents_leave_no_sb3_folders_in_the_temp_dir(tmp_path, monkeypatch):
    """SB3's default logger makes an ``SB3-<time>`` folder at every ``learn``; ours does not,
    unless the settings ask for logs."""
    import tempfile

    from meta_rl.envs import get_family

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    family = get_family("Pendulum")
    arch = PolicyArch(obs_dim=3, action_kind="box", action_dim=1, pi=(8,), vf=(8,))
    model = make_agent(family, None, arch, {"n_steps": 32, "batch_size": 32}, n_envs=1, seed=0)
    model.learn(32)
    assert model.num_timesteps == 32
    assert not list(tmp_path.glob("SB3-*"))
    # verbose asks for SB3's own logger (stdout), as in SB3
    settings = {"n_steps": 32, "batch_size": 32, "verbose": 1}
    loud = make_agent(family, None, arch, settings, n_envs=1, seed=0)
    loud.learn(32)
    from stable_baselines3.common.logger import HumanOutputFormat

    assert any(isinstance(f, HumanOutputFormat) for f in loud.logger.output_formats)
