"""The parameters of an SB3 ``ActorCriticPolicy`` as one flat vector, and its functional forward.

A :class:`PolicySpec` fixes the order and shapes of every parameter of the ``MlpPolicy`` of
PPO and A2C (actor, critic and, for continuous actions, ``log_std``). It flattens a policy
into a vector, unflattens a (batch of) vector(s) into named tensors, loads a vector into an
SB3 policy, and evaluates a policy *functionally* (``torch.func.functional_call``) with
parameters that may be batched over tasks and carry gradients back into a mapping network.
"""

from __future__ import annotations

import functools
import math
import numbers
import reprlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn
from torch.func import functional_call

from meta_rl.errors import CheckpointError, ConfigError, FamilyError
from meta_rl.infra.divergence import Divergence, degenerate_output

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
        if not isinstance(self.action_kind, str) or self.action_kind not in ("box", "discrete"):
            raise ConfigError(f"action_kind must be 'box' or 'discrete', got {self.action_kind!r}")
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}")
        for name in ("obs_dim", "action_dim"):
            value = getattr(self, name)
            if not _is_whole(value) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("pi", "vf"):
            sizes = getattr(self, name)
            if not isinstance(sizes, list | tuple) or not all(
                _is_whole(x) and x >= 1 for x in sizes
            ):
                raise ConfigError(
                    f"{name} must be a list of positive layer sizes, got {reprlib.repr(sizes)}"
                )
            object.__setattr__(self, name, tuple(int(x) for x in sizes))
        log_std = self.log_std_init
        if not isinstance(log_std, numbers.Real) or isinstance(log_std, bool):
            raise ConfigError(f"log_std_init must be a number, got {log_std!r}")
        try:
            log_std = float(log_std)
        except OverflowError:
            log_std = math.inf
        if not math.isfinite(log_std):
            raise ConfigError("log_std_init must be finite")
        object.__setattr__(self, "log_std_init", log_std)

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
            raise FamilyError(f"policies need a flat Box observation space, got {obs}")
        if isinstance(act, gym.spaces.Box) and len(act.shape) == 1:
            kind, dim = "box", int(act.shape[0])
        elif isinstance(act, gym.spaces.Discrete):
            kind, dim = "discrete", int(act.n)
        else:
            raise FamilyError(f"policies need a Box or Discrete action space, got {act}")
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
        """The architecture :meth:`to_json` wrote.

        Raises:
            CheckpointError: not an object of :meth:`to_json`'s fields, or values
                ``PolicyArch`` refuses.
        """
        if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
            raise CheckpointError("malformed policy architecture in metadata: not an object")
        try:
            return cls(**data)
        except (TypeError, ConfigError) as err:
            raise CheckpointError(f"malformed policy architecture in metadata: {err}") from None

    def check_env(self, env: gym.Env) -> None:
        """Raise ``ValueError`` if ``env``'s spaces do not fit this architecture."""
        other = PolicyArch.for_env(env, pi=self.pi, vf=self.vf, activation=self.activation)
        if (other.obs_dim, other.action_kind, other.action_dim) != (
            self.obs_dim,
            self.action_kind,
            self.action_dim,
        ):
            raise CheckpointError(
                f"the env's spaces (obs {other.obs_dim}, {other.action_kind} action "
                f"{other.action_dim}) do not match the policy (obs {self.obs_dim}, "
                f"{self.action_kind} action {self.action_dim})"
            )


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def policy_numel(arch: PolicyArch) -> int:
    """How many parameters the ``MlpPolicy`` of ``arch`` has, by arithmetic alone (no policy
    is built): the actor's and the critic's hidden layers, the action and value heads, and
    a Box action's ``log_std``. Checkpoint loading compares it with the weights' sizes
    before building anything of a size the metadata claims."""

    def mlp(sizes: tuple[int, ...]) -> tuple[int, int]:
        total, width = 0, arch.obs_dim
        for size in sizes:
            total, width = total + width * size + size, size
        return total, width

    actor, actor_out = mlp(arch.pi)
    critic, critic_out = mlp(arch.vf)
    heads = actor_out * arch.action_dim + arch.action_dim + critic_out + 1
    log_std = arch.action_dim if arch.action_kind == "box" else 0
    return actor + critic + heads + log_std


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
            raise CheckpointError(f"expected {self.numel} parameters, got {vector.shape[-1]}")
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
                    raise CheckpointError(
                        f"policy does not match the mapping's architecture: parameter {gn} "
                        f"{list(gs)} where {wn} {list(ws)} was expected ({self.arch})"
                    )
            raise CheckpointError(
                f"policy has {len(got)} parameter tensors, the mapping's architecture "
                f"{len(want)} ({self.arch})"
            )

    def load_into(self, policy: ActorCriticPolicy, vector: torch.Tensor) -> None:
        """Copy a flat vector into an SB3 policy's parameters."""
        self.check_policy(policy)
        if vector.shape != (self.numel,):
            raise CheckpointError(
                f"expected a vector of {self.numel} parameters, got {tuple(vector.shape)}"
            )
        if not torch.isfinite(vector).all():
            raise CheckpointError("refusing to load non-finite policy parameters")
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

    @functools.cached_property
    def _actor_layout(self) -> list[tuple[str, tuple[int, ...], int]]:
        """Name, shape and flat position of each parameter that makes the action mean (the
        actor's hidden layers and ``action_net``), in spec order."""
        layout, start = [], 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            if name.startswith(("mlp_extractor.policy_net.", "action_net.")):
                layout.append((name, shape, start))
            start += size
        return layout

    @functools.cached_property
    def actor_rows(self) -> torch.Tensor:
        """Positions, in the flat vector, of the actor's parameters, in spec order."""
        return torch.cat(
            [
                torch.arange(start, start + math.prod(shape))
                for _, shape, start in self._actor_layout
            ]
        )

    @functools.cached_property
    def log_std_rows(self) -> torch.Tensor:
        """Positions, in the flat vector, of a Box action's ``log_std`` (empty otherwise)."""
        start = 0
        for name, size in zip(self.names, self.sizes, strict=True):
            if name == "log_std":
                return torch.arange(start, start + size)
            start += size
        return torch.arange(0)

    def action_mean(self, actor: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Action means (or logits) of batched policies from their actor parameters alone.

        Args:
            actor: ``(B, len(actor_rows))``: each policy's parameters at ``actor_rows``.
            obs: ``(B, N, obs_dim)``.

        The same numbers as ``forward(...).mean``, by plain batched matrix products: several
        times faster, and a mapping that predicts only these rows skips the critic's.
        """
        tensors, start = [], 0
        for _, shape, _ in self._actor_layout:  # weight, bias, weight, bias, ...
            size = math.prod(shape)
            tensors.append(actor[:, start : start + size].reshape(len(actor), *shape))
            start += size
        h = obs
        n_layers = len(tensors) // 2
        for i in range(n_layers):
            weight, bias = tensors[2 * i], tensors[2 * i + 1]
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            if i < n_layers - 1:
                h = self._activation(h)
        return h

    @functools.cached_property
    def _activation(self) -> nn.Module:
        return ACTIVATIONS[self.arch.activation]()

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


def plain_params(model: Any, spec: PolicySpec) -> torch.Tensor:
    """A trained SB3 model's policy as the plain ``MlpPolicy`` parameters of ``spec``.

    Some families only learn from scratch with what a plain policy cannot carry (rl-zoo3
    trains MountainCarContinuous with gSDE and ``VecNormalize``). Their runs from scratch use
    those, and this turns the result into the vector a mapping, an expert or an evaluation
    uses, on raw observations:

    - ``VecNormalize``'s observation statistics are folded into the first layer of the actor
      and of the critic, and its reward scale into the value head. The fold is exact while
      no observation is clipped (``clip_obs``, 10 standard deviations); where the
      observation space's bounds reach beyond that, a warning says the plain policy may
      act differently near them (a run from scratch that stood still for long has narrow
      statistics; a MountainCarContinuous base that reaches the flag spans its bounds
      within 5);
    - gSDE's state-dependent noise becomes the plain policy's own ``log_std``, reset to
      ``spec.arch.log_std_init``. gSDE's noise is correlated in time, so a small standard
      deviation moves far; independent noise of the same size does not explore (on
      MountainCarContinuous, an expert fine-tuned from the base with gSDE's mean standard
      deviation, 0.14, stayed at -26 on a hard task; with 1.0 it reached 89). The mean
      action, hence every deterministic evaluation, is unchanged.

    A plain model's parameters are returned as they are.
    """
    policy = model.policy
    norm = model.get_vec_normalize_env()
    sde = bool(getattr(policy, "use_sde", False))
    if norm is None and not sde:
        return spec.flatten(policy)
    params = {n: p.detach().clone().float() for n, p in policy.named_parameters()}
    if sde:
        params["log_std"] = torch.full((spec.arch.action_dim,), float(spec.arch.log_std_init))
    if norm is not None and norm.norm_obs:
        scale = 1.0 / np.sqrt(norm.obs_rms.var + norm.epsilon)
        _warn_if_clipped(model.observation_space, norm.obs_rms.mean, scale, norm.clip_obs)
        scale_t = torch.as_tensor(scale, dtype=torch.float32)
        shift_t = torch.as_tensor(norm.obs_rms.mean * scale, dtype=torch.float32)
        for head in ("policy_net", "value_net"):
            first = _first_linear(spec, head)
            weight = params[f"{first}.weight"]
            params[f"{first}.bias"] = params[f"{first}.bias"] - weight @ shift_t
            params[f"{first}.weight"] = weight * scale_t
    if norm is not None and norm.norm_reward:
        value_scale = float(np.sqrt(norm.ret_rms.var + norm.epsilon))
        params["value_net.weight"] = params["value_net.weight"] * value_scale
        params["value_net.bias"] = params["value_net.bias"] * value_scale
    vector = torch.cat([params[n].reshape(-1) for n in spec.names])
    if vector.numel() != spec.numel:
        raise CheckpointError(
            f"the model's policy does not match the spec's architecture {spec.arch}"
        )
    return vector


def _warn_if_clipped(space: Any, mean: np.ndarray, scale: np.ndarray, clip: float) -> None:
    """Warn where an observation inside ``space`` would be clipped by ``VecNormalize``."""
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    finite = np.isfinite(low) & np.isfinite(high)
    reach = np.maximum(np.abs(high - mean), np.abs(low - mean)) * scale
    if np.any(reach[finite] > clip):
        warnings.warn(
            f"VecNormalize clips observations at {clip} standard deviations, and the "
            f"observation space reaches {float(reach[finite].max()):.1f}: the plain "
            "parameters act like the model only within the clip",
            stacklevel=3,
        )


def _first_linear(spec: PolicySpec, head: str) -> str:
    """The module that reads the observation on the actor's or the critic's path."""
    hidden = spec.arch.pi if head == "policy_net" else spec.arch.vf
    if hidden:
        return f"mlp_extractor.{head}.0"
    return "action_net" if head == "policy_net" else "value_net"


# ----------------------------------------------- the predicted policies' actions
def action_distribution(spec: PolicySpec, out: PolicyOutput) -> torch.distributions.Distribution:
    """The policy's action distribution: categorical over logits, or a diagonal Gaussian.

    Raises:
        Divergence: non-finite logits or means, or a standard deviation outside
            :data:`~meta_rl.infra.divergence.LOG_STD_RANGE` (a collapsed or exploding
            Gaussian): training that produced them has diverged.
    """
    with torch.no_grad():
        problem = degenerate_output(out.mean, out.log_std)
    if problem is not None:
        raise Divergence(f"the predicted policy became degenerate: {problem}")
    if spec.arch.action_kind == "discrete":
        return torch.distributions.Categorical(logits=out.mean)
    assert out.log_std is not None
    return torch.distributions.Normal(out.mean, out.log_std.exp().expand_as(out.mean))


def action_log_prob(
    spec: PolicySpec, dist: torch.distributions.Distribution, actions: torch.Tensor
) -> torch.Tensor:
    """Log-probability of whole actions (summed over a Box action's dimensions)."""
    logp = dist.log_prob(actions)
    return logp if spec.arch.action_kind == "discrete" else logp.sum(-1)


def action_entropy(spec: PolicySpec, dist: torch.distributions.Distribution) -> torch.Tensor:
    """Entropy of whole actions (summed over a Box action's dimensions)."""
    ent = dist.entropy()
    return ent if spec.arch.action_kind == "discrete" else ent.sum(-1)


def sample_actions(spec: PolicySpec, out: PolicyOutput, generator: torch.Generator) -> torch.Tensor:
    """A seeded draw from the policy: Gaussian for Box actions, categorical otherwise."""
    if spec.arch.action_kind == "discrete":
        probs = torch.softmax(out.mean, -1)
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        return flat.reshape(probs.shape[:-1])
    assert out.log_std is not None
    noise = torch.randn(out.mean.shape, generator=generator)
    return out.mean + out.log_std.exp() * noise
