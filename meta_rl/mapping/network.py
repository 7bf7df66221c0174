"""The mapping network: a task descriptor in, every parameter of a policy out."""

from __future__ import annotations

import numbers
import reprlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from meta_rl.errors import CheckpointError, ConfigError, TaskError
from meta_rl.mapping.policy import PolicySpec


@dataclass(frozen=True, kw_only=True)
class MappingConfig:
    """Shape of the mapping network.

    Attributes:
        hidden: Hidden layer sizes of the descriptor trunk.
        rank: Width of the low-rank output: the trunk's features go through a ``rank``-wide
            linear bottleneck before the ``numel``-wide output layer. ``None`` connects the
            last hidden layer straight to the output (``hidden[-1] * numel`` weights).
    """

    hidden: tuple[int, ...] = (64, 64)
    rank: int | None = 32

    def __post_init__(self) -> None:
        hidden = self.hidden
        if (
            not isinstance(hidden, list | tuple)
            or not hidden
            or not all(_is_whole(h) and h >= 1 for h in hidden)
        ):
            raise ConfigError(f"hidden must be positive layer sizes, got {reprlib.repr(hidden)}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        if self.rank is not None and not (_is_whole(self.rank) and self.rank >= 1):
            raise ConfigError(f"rank must be a positive whole number or None, got {self.rank!r}")
        if self.rank is not None:
            object.__setattr__(self, "rank", int(self.rank))

    def parameter_shapes(self, descriptor_dim: int, numel: int) -> dict[str, tuple[int, ...]]:
        """Name and shape of every tensor of a :class:`MappingNetwork` of this shape (its
        ``state_dict``), by arithmetic alone: what a checkpoint's weights must be."""
        shapes: dict[str, tuple[int, ...]] = {"base": (numel,)}
        width = descriptor_dim
        sizes = [*self.hidden, *([self.rank] if self.rank is not None else [])]
        for i, size in enumerate(sizes):
            shapes[f"trunk.{2 * i}.weight"] = (size, width)
            shapes[f"trunk.{2 * i}.bias"] = (size,)
            width = size
        shapes["head.weight"] = (numel, width)
        shapes["head.bias"] = (numel,)
        return shapes


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class MappingNetwork(nn.Module):
    """``f(d) = theta_base + W h(d) + b`` with ``W`` zero and ``b`` zero at initialisation.

    So an untrained mapping predicts exactly the base policy's parameters for every
    descriptor; training moves the prediction away from the base only as far as the
    objective asks. The base parameters are a fixed buffer (saved in the checkpoint); the
    output layer learns the offset ``Delta theta(d)``.

    Args:
        descriptor_dim: Length of the task descriptor.
        base: The base policy's flat parameters, ``(numel,)``.
        config: Trunk and output shape.
    """

    def __init__(self, descriptor_dim: int, base: torch.Tensor, config: MappingConfig):
        super().__init__()
        if base.dim() != 1:
            raise ConfigError("base parameters must be a flat vector")
        self.descriptor_dim = int(descriptor_dim)
        self.config = config
        self.register_buffer("base", base.detach().float().clone())
        layers: list[nn.Module] = []
        width = self.descriptor_dim
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        if config.rank is not None:
            layers.append(nn.Linear(width, config.rank))
            width = config.rank
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, base.numel())
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def numel_out(self) -> int:
        return int(self.base.numel())

    def forward(self, descriptor: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Policy parameters for ``descriptor`` (``(D,)`` or ``(B, D)``); with ``rows``,
        only the parameters at those positions (the output layer computes no others)."""
        if descriptor.shape[-1] != self.descriptor_dim:
            raise TaskError(
                f"descriptor has {descriptor.shape[-1]} values, the mapping expects "
                f"{self.descriptor_dim}"
            )
        features = self.trunk(descriptor)
        if rows is None:
            return self.base + self.head(features)
        return self.base[rows] + F.linear(features, self.head.weight[rows], self.head.bias[rows])

    def offset(self, descriptor: torch.Tensor) -> torch.Tensor:
        """The predicted ``Delta theta`` (parameters minus base)."""
        return self.head(self.trunk(descriptor))


def check_mapping_fits(mapping: MappingNetwork, spec: PolicySpec) -> None:
    """Raise ``ValueError`` if the mapping's output does not fit the policy spec."""
    if mapping.numel_out != spec.numel:
        raise CheckpointError(
            f"the mapping predicts {mapping.numel_out} parameters, the policy has {spec.numel}"
        )
