"""Mapping network: exact base at initialisation, shapes, objectives."""

from __future__ import annotations

import pytest
import torch

from meta_rl.mapping.network import MappingConfig, MappingNetwork
from meta_rl.mapping.policy import PolicyArch, PolicyOutput, PolicySpec, build_policy
from meta_rl.objectives.supervised import action_kl, params_loss


@pytest.mark.parametrize("rank", [None, 8])
def test_untrained_mapping_is_exactly_the_base(rank):
    arch = PolicyArch(obs_dim=3, action_kind="box", action_dim=1, pi=(16,), vf=(16,))
    spec = PolicySpec(arch)
    base = spec.flatten(build_policy(arch))
    net = MappingNetwork(4, base, MappingConfig(hidden=(32,), rank=rank))
    d = torch.rand(10, 4) * 2 - 1
    out = net(d)
    assert out.shape == (10, spec.numel)
    assert torch.equal(out, base.expand(10, -1))
    # and gradients reach the output layer, so training can move it
    out.sum().backward()
    assert net.head.weight.grad is not None and net.head.weight.grad.abs().sum() > 0


def test_low_rank_is_smaller():
    base = torch.zeros(10_000)
    full = MappingNetwork(4, base, MappingConfig(hidden=(64, 64), rank=None))
    low = MappingNetwork(4, base, MappingConfig(hidden=(64, 64), rank=16))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(low) < count(full) / 3


def test_descriptor_size_is_checked():
    net = MappingNetwork(4, torch.zeros(10), MappingConfig())
    with pytest.raises(ValueError, match="descriptor has 3 values"):
        net(torch.zeros(3))
    with pytest.raises(ValueError):
        MappingConfig(hidden=())


def test_objectives_are_zero_at_the_target_and_positive_elsewhere():
    a = torch.randn(3, 7)
    assert params_loss(a, a) == 0 and params_loss(a + 1, a) > 0
    mean, log_std = torch.randn(4, 2), torch.zeros(1, 2)
    same = PolicyOutput(mean=mean, log_std=log_std, value=torch.zeros(4))
    shifted = PolicyOutput(mean=mean + 0.5, log_std=log_std, value=torch.zeros(4))
    assert torch.allclose(action_kl(same, same, False), torch.zeros(4))
    torch.testing.assert_close(action_kl(same, shifted, False), torch.full((4,), 0.25))
    logits = PolicyOutput(mean=torch.randn(4, 3), log_std=None, value=torch.zeros(4))
    assert torch.allclose(action_kl(logits, logits, True), torch.zeros(4), atol=1e-6)


def test_predicting_some_rows_gives_those_rows_of_the_whole_prediction():
    torch.manual_seed(0)
    network = MappingNetwork(3, torch.randn(50), MappingConfig(hidden=(8,), rank=4))
    torch.nn.init.normal_(network.head.weight)  # a trained-looking head, not the zero start
    descriptors = torch.randn(4, 3)
    rows = torch.tensor([0, 7, 8, 49])
    torch.testing.assert_close(network(descriptors, rows), network(descriptors)[:, rows])
