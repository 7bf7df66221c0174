"""The parameters of an SB3 ``ActorCriticPolicy`` as one flat vector, and its functional forward.

A :class:`PolicySpec` fixes the order and shapes of every parameter of the ``MlpPolicy`` of
PPO and A2C (actor, critic and, for continuous actions, ``log_std``). It flattens a policy
into a vector, unflattens a (batch of) vector(s) into named tensors, loads a vector into an
SB3 policy, and evaluates a policy *functionally* (``torch.func.functional_call``) with
parameters that may be batched over tasks and carry gradients back into a mapping network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn
from torch.func import functional_call

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


@dataclass(frozen=True)
class PolicyArch:
    """What an ``MlpPolicy`` is built from; JSON-serialisable.

    Attributes:
        obs_dim: Length of the (flat, Box) observation.
        action_kind: ``"box"`` or ``"discrete"``.
        action_dim: Action dimension (Box) or number of actions (Discrete).
        pi: Hidden layer sizes of the actor.
        vf: Hidden layer sizes of the critic.
        activation: ``"tanh"``, ``"relu"`` or ``"elu"``.
        log_std_init: Initial log standard deviation (Box actions).
    """

    obs_dim: int
    action_kind: str
    action_dim: int
    pi: tuple[int, ...] = (64, 64)
    vf: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0

    def __post_init__(self) -> None:
        if self.action_kind not in ("box", "discrete"):
            raise ValueError(f"action_kind must be 'box' or 'discrete', got {self.action_kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
        object.__setattr__(self, "pi", tuple(int(x) for x in self.pi))
        object.__setattr__(self, "vf", tuple(int(x) for x in self.vf))

    @classmethod
    def for_env(
        cls,
        env: gym.Env,
        *,
        pi: tuple[int, ...] = (64, 64),
        vf: tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        log_std_init: float = 0.0,
    ) -> PolicyArch:
        """The architecture of a policy for ``env``'s spaces."""
        obs, act = env.observation_space, env.action_space
        if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
            raise ValueError(f"policies need a flat Box observation space, got {obs}")
        if isinstance(act, gym.spaces.Box) and len(act.shape) == 1:
            kind, dim = "box", int(act.shape[0])
        elif isinstance(act, gym.spaces.Discrete):
            kind, dim = "discrete", int(act.n)
        else:
            raise ValueError(f"policies need a Box or Discrete action space, got {act}")
        return cls(
            obs_dim=int(obs.shape[0]),
            action_kind=kind,
            action_dim=dim,
            pi=pi,
            vf=vf,
            activation=activation,
            log_std_init=log_std_init,
        )

    def policy_kwargs(self) -> dict[str, Any]:
        """``policy_kwargs`` for an SB3 ``MlpPolicy`` of this architecture."""
        return {
            "net_arch": {"pi": list(self.pi), "vf": list(self.vf)},
            "activation_fn": ACTIVATIONS[self.activation],
            "log_std_init": self.log_std_init,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "obs_dim": self.obs_dim,
            "action_kind": self.action_kind,
            "action_dim": self.action_dim,
            "pi": list(self.pi),
            "vf": list(self.vf),
            "activation": self.activation,
            "log_std_init": self.log_std_init,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyArch:
        try:
            return cls(**dict(data))
        except TypeError as err:
            raise ValueError(f"malformed policy architecture in metadata: {err}") from err

    def check_env(self, env: gym.Env) -> None:
        """Raise ``ValueError`` if ``env``'s spaces do not fit this architecture."""
        other = PolicyArch.for_env(env, pi=self.pi, vf=self.vf, activation=self.activation)
        if (other.obs_dim, other.action_kind, other.action_dim) != (
            self.obs_dim,
            self.action_kind,
            self.action_dim,
        ):
            raise ValueError(
                f"the env's spaces (obs {other.obs_dim}, {other.action_kind} action "
                f"{other.action_dim}) do not match the policy (obs {self.obs_dim}, "
                f"{self.action_kind} action {self.action_dim})"
            )


class _Heads(nn.Module):
    """Deterministic outputs of an ``ActorCriticPolicy``: action mean or logits, and value."""

    def __init__(self, policy: ActorCriticPolicy):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.policy
        features = p.extract_features(obs, p.features_extractor)
        latent_pi, latent_vf = p.mlp_extractor(features)
        return p.action_net(latent_pi), p.value_net(latent_vf).squeeze(-1)


@dataclass
class PolicyOutput:
    """Functional outputs for a batch of observations.

    Attributes:
        mean: Action mean (Box) or logits (Discrete), ``(..., action_dim)``.
        log_std: Log standard deviation (Box), broadcastable to ``mean``; ``None`` otherwise.
        value: State value, ``(...)``.
    """

    mean: torch.Tensor
    log_std: torch.Tensor | None
    value: torch.Tensor


class PolicySpec:
    """Ordered names and shapes of an ``ActorCriticPolicy``'s parameters.

    Args:
        arch: The architecture; a template SB3 policy of it is built on the CPU.
    """

    def __init__(self, arch: PolicyArch):
        self.arch = arch
        self.template = build_policy(arch)
        self.template.requires_grad_(False)
        self.names: list[str] = [n for n, _ in self.template.named_parameters()]
        self.shapes: list[tuple[int, ...]] = [tuple(p.shape) for p in self.template.parameters()]
        self.sizes: list[int] = [math.prod(s) for s in self.shapes]
        self.numel = int(sum(self.sizes))
        self._heads = _Heads(self.template)

    def __repr__(self) -> str:
        return f"PolicySpec({self.numel} parameters in {len(self.names)} tensors)"

    def layout(self) -> list[tuple[str, list[int]]]:
        """Names and shapes, for metadata and error messages."""
        return [(n, list(s)) for n, s in zip(self.names, self.shapes, strict=True)]

    # -------------------------------------------------------------- vectors
    def flatten(self, policy: ActorCriticPolicy) -> torch.Tensor:
        """The policy's parameters as one float32 vector, in spec order."""
        self.check_policy(policy)
        return torch.cat([p.detach().reshape(-1).float().cpu() for p in policy.parameters()])

    def unflatten(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named tensors of ``vector`` (shape ``(..., numel)``), as views that keep gradients."""
        if vector.shape[-1] != self.numel:
            raise ValueError(f"expected {self.numel} parameters, got {vector.shape[-1]}")
        batch = vector.shape[:-1]
        out, start = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            out[name] = vector[..., start : start + size].reshape(*batch, *shape)
            start += size
        return out

    def check_policy(self, policy: ActorCriticPolicy) -> None:
        """Raise ``ValueError`` naming the first parameter that does not match the spec."""
        got = [(n, tuple(p.shape)) for n, p in policy.named_parameters()]
        want = list(zip(self.names, self.shapes, strict=True))
        if got != want:
            for (gn, gs), (wn, ws) in zip(got, want, strict=False):
                if (gn, gs) != (wn, ws):
                    raise ValueError(
                        f"policy does not match the mapping's architecture: parameter {gn} "
                        f"{list(gs)} where {wn} {list(ws)} was expected ({self.arch})"
                    )
            raise ValueError(
                f"policy has {len(got)} parameter tensors, the mapping's architecture "
                f"{len(want)} ({self.arch})"
            )

    def load_into(self, policy: ActorCriticPolicy, vector: torch.Tensor) -> None:
        """Copy a flat vector into an SB3 policy's parameters."""
        self.check_policy(policy)
        if vector.shape != (self.numel,):
            raise ValueError(
                f"expected a vector of {self.numel} parameters, got {tuple(vector.shape)}"
            )
        if not torch.isfinite(vector).all():
            raise ValueError("refusing to load non-finite policy parameters")
        params = self.unflatten(vector.detach())
        with torch.no_grad():
            for name, p in policy.named_parameters():
                p.copy_(params[name].to(p.device, p.dtype))

    # ----------------------------------------------------------- functional
    def forward(self, vector: torch.Tensor, obs: torch.Tensor) -> PolicyOutput:
        """Evaluate the policy with parameters ``vector`` on ``obs``.

        Args:
            vector: ``(numel,)``, or ``(B, numel)`` for one parameter set per task.
            obs: ``(N, obs_dim)``, or ``(B, N, obs_dim)`` with batched parameters.
        """
        if vector.dim() == 1:
            return self._forward_one(vector, obs)
        if obs.dim() != 3 or obs.shape[0] != vector.shape[0]:
            raise ValueError("batched parameters need observations shaped (B, N, obs_dim)")
        mean, value = torch.func.vmap(self._heads_call)(vector, obs)
        log_std = self._log_std(vector)
        if log_std is not None:
            log_std = log_std.unsqueeze(1)  # (B, 1, action_dim)
        return PolicyOutput(mean=mean, log_std=log_std, value=value)

    def _heads_call(self, vector: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params = {f"policy.{k}": v for k, v in self.unflatten(vector).items()}
        return functional_call(self._heads, params, (obs,), strict=False)

    def _forward_one(self, vector: torch.Tensor, obs: torch.Tensor) -> PolicyOutput:
        mean, value = self._heads_call(vector, obs)
        return PolicyOutput(mean=mean, log_std=self._log_std(vector), value=value)

    def _log_std(self, vector: torch.Tensor) -> torch.Tensor | None:
        if self.arch.action_kind != "box":
            return None
        return self.unflatten(vector)["log_std"]

    def act(self, vector: torch.Tensor, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions (mean or arg-max) for numpy observations, as numpy."""
        with torch.no_grad():
            out = self._forward_one(vector, torch.as_tensor(obs, dtype=torch.float32))
        if self.arch.action_kind == "discrete":
            return out.mean.argmax(-1).numpy()
        return out.mean.numpy()


def build_policy(arch: PolicyArch) -> ActorCriticPolicy:
    """A fresh SB3 ``ActorCriticPolicy`` (the ``MlpPolicy``) of ``arch``, on the CPU."""
    obs_space = gym.spaces.Box(-np.inf, np.inf, (arch.obs_dim,), np.float32)
    if arch.action_kind == "box":
        act_space: gym.Space = gym.spaces.Box(-1.0, 1.0, (arch.action_dim,), np.float32)
    else:
        act_space = gym.spaces.Discrete(arch.action_dim)
    return ActorCriticPolicy(obs_space, act_space, lambda _: 0.0, **arch.policy_kwargs())
