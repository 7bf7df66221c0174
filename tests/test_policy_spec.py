"""Policy parameter spec: flatten/unflatten, functional evaluation equals SB3, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_rl.experts import make_agent
from meta_rl.policy_spec import PolicyArch, PolicySpec, build_policy
from meta_rl.recipes import recipe_for

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
