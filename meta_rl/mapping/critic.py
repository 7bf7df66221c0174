"""The task-conditioned critic an off-policy objective leaves beside the mapping.

The ``td3`` objective trains one twin critic ``Q(s, a, d)`` for every task, ``sacd`` one
``Q(s, d) -> R^|A|``. The checkpoint keeps it (:class:`TaskCritic`), so that an off-policy
fine-tune of a predicted policy starts with a critic that already knows the task family.

For one task the descriptor ``d`` is a constant, and the first layer's
``W [s; a; d] + b`` equals ``W_sa [s; a] + (b + W_d d)``: folding ``d`` into the bias gives
an ordinary critic of ``(s, a)`` (:meth:`TaskCritic.for_task`), the network SB3's SAC and
TD3 hold, with the same ReLU layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

CRITIC_OBJECTIVES = ("td3", "sac", "sacd")
"""The objectives that train a task-conditioned critic."""
BOX_CRITIC_OBJECTIVES = ("td3", "sac")
"""Those whose critic is ``Q(s, a, d)``, for Box actions."""
PREFIX = "critic."
"""Prefix of the critic's tensors in a checkpoint."""


def critic_shapes(
    objective: str,
    obs_dim: int,
    action_dim: int,
    descriptor_dim: int,
    hidden: Sequence[int],
) -> dict[str, tuple[int, ...]]:
    """The checkpoint tensors of a critic (names with :data:`PREFIX`) and their shapes.

    ``td3``'s nets read ``[s; a; d]`` and give one value; ``sacd``'s read ``[s; d]`` and
    give one value per action (``action_dim`` actions)."""
    box = objective in BOX_CRITIC_OBJECTIVES
    width = obs_dim + (action_dim if box else 0) + descriptor_dim
    shapes: dict[str, tuple[int, ...]] = {}
    for net in ("q1", "q2"):
        inputs = width
        for i, size in enumerate([*hidden, 1 if box else action_dim]):
            shapes[f"{PREFIX}{net}.{2 * i}.weight"] = (size, inputs)
            shapes[f"{PREFIX}{net}.{2 * i}.bias"] = (size,)
            inputs = size
    return shapes


@dataclass(frozen=True)
class TaskCritic:
    """A twin critic conditioned on the task descriptor, as a checkpoint keeps it.

    Attributes:
        objective: The objective that trained it (``"td3"``: ``Q(s, a, d)`` with actions
            in the env's units; ``"sacd"``: ``Q(s, d)``, one output per action).
        hidden: Hidden layer sizes of each net (ReLU).
        gamma: The discount it was trained with: a fine-tune that keeps it warm uses the
            same one.
        tensors: The weights, named ``q1.0.weight`` and so on (``nn.Sequential``
            indices: linear layers at even positions).
    """

    objective: str
    hidden: tuple[int, ...]
    gamma: float
    tensors: dict[str, torch.Tensor]

    @classmethod
    def from_state(
        cls, objective: str, hidden: Sequence[int], gamma: float, state: Mapping[str, torch.Tensor]
    ) -> TaskCritic:
        """From a critic module's ``state_dict`` (a copy is kept)."""
        return cls(
            objective,
            tuple(int(h) for h in hidden),
            float(gamma),
            {k: v.detach().clone() for k, v in state.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.objective, "hidden": list(self.hidden), "gamma": self.gamma}

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        return {PREFIX + k: v for k, v in self.tensors.items()}

    def for_task(self, descriptor: np.ndarray | torch.Tensor) -> list[list[torch.Tensor]]:
        """The two nets for one task: for each, its layers' ``[weight, bias, ...]`` with the
        descriptor folded into the first layer's bias (its columns dropped from the
        weight), so that they read ``[s; a]`` (``td3``) or ``s`` (``sacd``) alone."""
        d = torch.as_tensor(np.asarray(descriptor, dtype=np.float32))
        nets = []
        for net in ("q1", "q2"):
            layers = []
            for i in range(len(self.hidden) + 1):
                weight = self.tensors[f"{net}.{2 * i}.weight"]
                bias = self.tensors[f"{net}.{2 * i}.bias"]
                if i == 0:
                    cut = weight.shape[1] - d.numel()
                    bias = bias + weight[:, cut:] @ d
                    weight = weight[:, :cut]
                layers += [weight.clone(), bias.clone()]
            nets.append(layers)
        return nets
