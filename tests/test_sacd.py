"""The ``sacd`` objective: discrete soft actor-critic with the mapping as its actor."""

from __future__ import annotations

import pytest

from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.objectives.sacd import SACDConfig
from meta_rl.training.config import TrainConfig
from meta_rl.training.trainer import train

from .conftest import TINY_OFF_POLICY, TINY_TRAIN

SMALL = SACDConfig(**TINY_OFF_POLICY)


def test_sacd_refuses_box_actions_and_td3_refuses_discrete_ones():
    with pytest.raises(ValueError, match=r"sacd objective needs discrete actions.*use td3"):
        TrainConfig(family="Pendulum", objective="sacd")
    with pytest.raises(ValueError, match=r"td3 objective needs continuous.*use sacd"):
        TrainConfig(family="CartPole", objective="td3")


def test_sacd_config_errors():
    with pytest.raises(ValueError, match=r"sacd\.iterations"):
        SACDConfig(iterations=0)
    with pytest.raises(ValueError, match=r"sacd\.target_entropy"):
        SACDConfig(target_entropy=1.5)
    with pytest.raises(ValueError, match=r"sacd\.init_alpha"):
        SACDConfig(init_alpha=0.0)


def test_sacd_objective_trains_cartpole_without_experts_and_records_its_tasks(tmp_path):
    settings = {**TINY_TRAIN, "family": "CartPole"}
    config = SACDConfig(**{**SMALL.__dict__, "tasks": 10})
    trained, log = train(TrainConfig(objective="sacd", workdir=tmp_path, sacd=config, **settings))
    phases = [h.get("phase") for h in log["mapping_history"]]
    assert phases == [None, "sacd", "sacd"]
    assert trained.objective == "sacd"
    assert log["env_steps"]["experts"] == 0 and not log["experts"]  # no expert trained
    assert not list(tmp_path.rglob("expert-*"))
    assert [h["sacd_env_steps"] for h in log["mapping_history"][1:]] == [3 * 20, 2 * 3 * 20]
    assert log["sacd_tasks"] == 10
    saved = TrainedMapping.load(trained.save(tmp_path / "m.safetensors"))
    assert len(saved.info["sacd_tasks"]) == 10
    assert saved.info["sacd_tasks"][:3] == trained.info["split"]["train"]
