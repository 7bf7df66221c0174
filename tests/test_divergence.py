"""NaN or infinite values: detected, reported, and the last good parameters kept."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from torch.nn.utils import parameters_to_vector

from meta_rl.agents import DivergenceGuard, DivergenceWarning
from meta_rl.objectives.supervised import DistillPhase
from meta_rl.training.config import TrainConfig
from meta_rl.training.trainer import train

from .conftest import TINY_TRAIN


class _Poison(BaseCallback):
    """An update that goes wrong: a NaN in the policy after the optimizer's fifth step (in
    the middle of an update), or (``collapse``) a finite log standard deviation so low that
    the Gaussian is a point. Its hook runs before the guard's, which must catch it before
    the next minibatch."""

    def __init__(self, collapse: bool = False) -> None:
        super().__init__()
        self.steps = 0
        self.collapse = collapse
        self.before: torch.Tensor | None = None

    def _on_training_start(self) -> None:
        self.model.policy.optimizer.register_step_post_hook(self._poison)

    def _on_rollout_start(self) -> None:
        self.before = parameters_to_vector(self.model.policy.parameters()).detach().clone()

    def _poison(self, optimizer, *_) -> None:
        self.steps += 1
        if self.steps == 5:
            with torch.no_grad():
                if self.collapse:  # finite, but exp(-1000) is 0: SB3's Normal would refuse it
                    self.model.policy.log_std.fill_(-1000.0)
                else:
                    next(self.model.policy.parameters()).view(-1)[0] = float("nan")

    def _on_step(self) -> bool:
        return True


@pytest.mark.parametrize("collapse", [False, True])
def test_guard_puts_back_the_last_usable_policy_and_stops(collapse):
    # 4 minibatches per update: the fifth optimizer step is inside the second update.
    model = PPO("MlpPolicy", "Pendulum-v1", n_steps=256, batch_size=64, n_epochs=1, seed=0)
    poison, guard = _Poison(collapse), DivergenceGuard()
    with pytest.warns(DivergenceWarning, match="last usable policy"):
        model.learn(256 * 6, callback=[poison, guard])
    assert guard.diverged and model.num_timesteps < 256 * 6
    restored = parameters_to_vector(model.policy.parameters()).detach()
    assert torch.isfinite(restored).all() and model.policy.log_std.min() > -20
    # The policy put back is the one the second rollout started with.
    assert poison.before is not None and torch.equal(restored, poison.before)


def test_a_diverging_mapping_training_keeps_the_best_mapping(tmp_path, monkeypatch):
    real = DistillPhase.loss
    calls = [0]

    def poisoned(self, predicted):
        loss, stats = real(self, predicted)
        calls[0] += 1
        return (loss * float("nan"), stats) if calls[0] > 7 else (loss, stats)

    monkeypatch.setattr(DistillPhase, "loss", poisoned)
    trained, log = train(
        TrainConfig(objective="distill", workdir=tmp_path, **{**TINY_TRAIN, "rounds": 3})
    )
    history = log["mapping_history"]
    assert "diverged" in history[-1] and "round 2" in history[-1]["diverged"]
    assert trained.info["selected_round"] in (0, 1)
    assert all(torch.isfinite(v).all() for v in trained.network.state_dict().values())


def test_an_exploding_standard_deviation_in_rl_keeps_the_best_mapping(tmp_path):
    # A learning rate of 1 drives rl's log standard deviation past exp's range in its
    # first iteration: the phase stops, the best mapping so far is kept and saved.
    from meta_rl.objectives.on_policy import RLConfig

    config = TrainConfig(
        objective="rl",
        workdir=tmp_path,
        **{**TINY_TRAIN, "rl": RLConfig(iterations=3, lr=1.0, n_steps=64, minibatches=2)},
    )
    trained, log = train(config)
    history = log["mapping_history"]
    assert "degenerate" in history[-1]["diverged"] or "became" in history[-1]["diverged"]
    assert trained.info["selected_round"] == 0
    assert all(torch.isfinite(v).all() for v in trained.network.state_dict().values())
