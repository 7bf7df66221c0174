"""The ``sac`` objective: soft actor-critic with the mapping as its actor (Box actions)."""

from __future__ import annotations

import math

import pytest
import torch

from agents.adapt import adapt
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.objectives.sac import SACConfig
from meta_rl.objectives.td3 import TD3Config
from meta_rl.training.config import TrainConfig, settings_key
from meta_rl.training.trainer import train

from .conftest import TINY_OFF_POLICY, TINY_TRAIN

SMALL = SACConfig(**TINY_OFF_POLICY)


def test_sac_refuses_discrete_actions():
    with pytest.raises(ValueError, match=r"sac objective needs continuous.*use sacd"):
        TrainConfig(family="CartPole", objective="sac")


def test_sac_config_errors():
    with pytest.raises(ValueError, match=r"sac\.iterations"):
        SACConfig(iterations=0)
    with pytest.raises(ValueError, match=r"sac\.init_alpha"):
        SACConfig(init_alpha=0.0)
    with pytest.raises(ValueError, match=r"sac\.policy_delay"):
        SACConfig(policy_delay=0)
    with pytest.raises(ValueError, match=r"sac\.entropy_per_dim"):
        SACConfig(entropy_per_dim=math.inf)


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory) -> tuple[TrainedMapping, dict, TrainedMapping]:
    workdir = tmp_path_factory.mktemp("sac")
    start, _ = train(
        TrainConfig(
            objective="td3", workdir=workdir, td3=TD3Config(**TINY_OFF_POLICY), **TINY_TRAIN
        )
    )
    trained, log = train(TrainConfig(objective="sac", workdir=workdir, sac=SMALL, **TINY_TRAIN))
    saved = TrainedMapping.load(trained.save(workdir / "sac.safetensors"))
    return saved, log, start


def test_sac_objective_trains_without_experts_and_keeps_its_critic(sac_run):
    trained, log, _ = sac_run
    phases = [h.get("phase") for h in log["mapping_history"]]
    assert phases == [None, "sac", "sac"]
    assert trained.objective == "sac"
    assert log["env_steps"]["experts"] == 0 and not log["experts"]
    assert [h["sac_env_steps"] for h in log["mapping_history"][1:]] == [3 * 20, 2 * 3 * 20]
    assert trained.critic is not None and trained.critic.objective == "sac"
    assert trained.critic.gamma == SMALL.gamma


def test_sac_learns_the_policies_spread_where_td3_keeps_the_bases(sac_run):
    # td3 trains the action mean alone; sac's actor loss reaches the predicted log_std too.
    sac, _, td3 = sac_run
    spec = sac.spec
    descriptor = torch.as_tensor(sac.descriptor({"m": 1.3, "l": 0.9}))
    with torch.no_grad():
        sac_std = sac.network(descriptor)[spec.log_std_rows]
        td3_std = td3.network(descriptor)[spec.log_std_rows]
        base = sac.network.base[spec.log_std_rows]
    assert len(spec.log_std_rows) == 1
    assert torch.equal(td3_std, td3.network.base[spec.log_std_rows])
    assert not torch.equal(sac_std, base)


def test_a_sac_mapping_warms_an_off_policy_fine_tune_with_its_critic(sac_run):
    trained, _, _ = sac_run
    model = adapt(
        trained,
        task={"m": 1.3, "l": 0.9},
        algo="sac",
        seed=0,
        warm_steps=64,
        fit_updates=20,
        critic_updates=0,
        batch_size=32,
    )
    # The critic is the mapping's, folded for the task: not SB3's default 256 x 256.
    hidden = [m.out_features for m in model.critic.qf0 if isinstance(m, torch.nn.Linear)]
    assert hidden[:-1] == list(trained.critic.hidden)


def test_sac_settings_leave_other_objectives_keys_alone():
    plain = TrainConfig(objective="td3", **TINY_TRAIN)
    other = TrainConfig(objective="td3", sac=SACConfig(iterations=7), **TINY_TRAIN)
    assert settings_key(plain) == settings_key(other)
    assert settings_key(TrainConfig(objective="sac", **TINY_TRAIN)) != settings_key(plain)
