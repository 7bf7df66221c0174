"""The one place that builds Stable-Baselines3 models: a PPO or A2C whose ``MlpPolicy`` has
a given architecture, optionally carrying flat predicted parameters, and the SAC or TD3 of
an off-policy fine-tune (:func:`make_off_policy_agent`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import Actor as TD3Actor
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from meta_rl.envs import Family
from meta_rl.errors import ConfigError
from meta_rl.mapping.policy import ACTIVATIONS, PolicyArch, PolicySpec

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C}
OFF_POLICY_ALGOS: dict[str, type[OffPolicyAlgorithm]] = {"sac": SAC, "td3": TD3}
OFF_POLICY_HIDDEN = (256, 256)
"""SB3's own default layers for SAC and TD3, used where no mapping critic sets them."""
A2C_KEYS = {"n_steps", "gamma", "gae_lambda", "learning_rate", "ent_coef", "vf_coef"}


def make_agent(
    family: Family,
    task: Mapping[str, float] | None,
    arch: PolicyArch,
    settings: Mapping[str, Any],
    *,
    n_envs: int,
    seed: int,
    params: torch.Tensor | None = None,
    algo: str = "ppo",
    spec: PolicySpec | None = None,
    env: gym.Env | None = None,
) -> BaseAlgorithm:
    """An SB3 PPO (or A2C) on ``task`` whose ``MlpPolicy`` has architecture ``arch``.

    With ``params``, the policy carries those parameters and its optimizer is rebuilt
    afterwards, so no optimizer state of other parameters leaks into the fine-tune.

    Args:
        family: The family.
        task: The task (validated); ignored when ``env`` is given.
        arch: Policy architecture.
        settings: Algorithm keyword arguments (``n_steps``, ``learning_rate``,
            ``verbose``, ``tensorboard_log``, ...; without the last two the model logs
            nothing, see :func:`silence`), and two more for runs from scratch:
            ``normalize`` (wrap the env in ``VecNormalize``) and ``policy_kwargs`` (merged
            over ``arch``'s, e.g. gSDE's ``log_std_init``). Read such a model's
            parameters with :func:`meta_rl.policy_spec.plain_params`.
        n_envs: Parallel envs (a ``DummyVecEnv``).
        seed: Seed of the algorithm and the envs.
        params: Flat policy parameters to start from.
        algo: ``"ppo"`` or ``"a2c"``.
        spec: The spec of ``arch`` (built if not given).
        env: An env (or VecEnv) to train on instead of ``n_envs`` copies of ``task``.
    """
    if algo not in ALGOS:
        raise ConfigError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    kwargs = dict(settings)
    verbose = int(kwargs.pop("verbose", 0))
    normalize = bool(kwargs.pop("normalize", False))
    policy_kwargs = {**arch.policy_kwargs(), **kwargs.pop("policy_kwargs", {})}
    if params is not None and (normalize or kwargs.get("use_sde")):
        raise ConfigError(
            "a warm start needs plain PPO settings: these use gSDE or VecNormalize, which "
            "the flat parameters cannot carry (use the recipe's `ppo`, not `scratch_ppo`)"
        )
    if env is None:
        task = family.task_space.validate(task)
        # A constructor, not the id: SB3 would ask an id for render_mode="rgb_array", which
        # a user's env without render modes answers with Gymnasium's warning.
        env = make_vec_env(partial(family.make, task=task), n_envs=n_envs, seed=seed)
    if normalize:
        env = VecNormalize(env, gamma=float(kwargs.get("gamma", 0.99)))
    if algo == "a2c":
        kwargs = {k: v for k, v in kwargs.items() if k in A2C_KEYS}
    model = _construct(ALGOS[algo], "MlpPolicy", env, policy_kwargs, seed, verbose, kwargs)
    if params is not None:
        spec = spec or PolicySpec(arch)
        spec.load_into(model.policy, params)
        rebuild_optimizer(model)
    return model


def algo_name(model: BaseAlgorithm) -> str:
    """``"ppo"``, ``"a2c"``, ``"sac"`` or ``"td3"``: the algorithm of an SB3 model."""
    for name, cls in {**ALGOS, **OFF_POLICY_ALGOS}.items():
        if isinstance(model, cls):
            return name
    raise ConfigError(f"not a model of {', '.join({**ALGOS, **OFF_POLICY_ALGOS})}: {model!r}")


def silence(model: BaseAlgorithm) -> BaseAlgorithm:
    """Give ``model`` a logger with no outputs. SB3's default logger, even at verbose 0,
    makes an empty ``SB3-<time>`` folder in the temp dir at every ``learn``: thousands of
    them over a benchmark. :func:`make_agent` does this unless ``verbose`` or
    ``tensorboard_log`` is among the settings; to log from a silenced model, give it a
    logger: ``model.set_logger(stable_baselines3.common.logger.configure(folder, ["stdout"]))``."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def rebuild_optimizer(model: BaseAlgorithm) -> None:
    """A fresh optimizer over the policy's current parameters (after loading new ones)."""
    policy = model.policy
    lr = model.lr_schedule(1.0)
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr, **policy.optimizer_kwargs)


class _OwnActorActivation:
    """SB3's SAC and TD3 policies take one ``activation_fn`` for the actor and the critic;
    these take the actor's own, ``actor_activation_fn``: the actor can then carry a
    prediction's ``tanh`` layers while the critic keeps ReLU, the layers of the mapping's
    critic. Everything else is SB3's (``SAC.load`` reads what ``save`` writes, where
    meta-rl is installed)."""

    actor_activation_fn: type[nn.Module]
    actor_class: type[nn.Module]

    def __init__(self, *args: Any, actor_activation_fn: type[nn.Module] = nn.Tanh, **kwargs: Any):
        self.actor_activation_fn = actor_activation_fn  # read by make_actor, during __init__
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def make_actor(self, features_extractor: Any = None) -> nn.Module:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)  # type: ignore[attr-defined]
        kwargs["activation_fn"] = self.actor_activation_fn
        return self.actor_class(**kwargs).to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data["actor_activation_fn"] = self.actor_activation_fn
        return data


class OwnActorSACPolicy(_OwnActorActivation, SACPolicy):
    """SB3's SAC ``MlpPolicy`` whose actor has its own activation."""

    actor_class = SACActor


class OwnActorTD3Policy(_OwnActorActivation, TD3Policy):
    """SB3's TD3 ``MlpPolicy`` whose actor has its own activation."""

    actor_class = TD3Actor


_OWN_ACTOR_POLICIES = {"sac": OwnActorSACPolicy, "td3": OwnActorTD3Policy}


def make_off_policy_agent(
    env: gym.Env | Any,
    algo: str,
    arch: PolicyArch,
    settings: Mapping[str, Any],
    *,
    seed: int,
    qf: tuple[int, ...] = OFF_POLICY_HIDDEN,
) -> OffPolicyAlgorithm:
    """An SB3 SAC or TD3 on ``env`` whose actor has the prediction's layers (``arch``'s
    ``pi`` and activation) and whose critic has ReLU layers ``qf`` (those of the mapping's
    critic where it has one, to carry it exactly; else SB3's default 256 x 256).

    ``settings`` are the algorithm's keyword arguments, plus ``action_noise`` for TD3: the
    std of its Gaussian exploration noise, in SB3's ``[-1, 1]`` action units. Nothing
    waits for random actions (``learning_starts`` 0): the caller fills the buffer first.
    """
    if algo not in OFF_POLICY_ALGOS:
        raise ConfigError(f"algo must be one of {sorted(OFF_POLICY_ALGOS)}, got {algo!r}")
    kwargs = dict(settings)
    verbose = int(kwargs.pop("verbose", 0))
    noise = kwargs.pop("action_noise", None)
    if algo == "td3" and noise:
        dim = int(np.prod(env.action_space.shape))
        kwargs["action_noise"] = NormalActionNoise(np.zeros(dim), float(noise) * np.ones(dim))
    policy_kwargs = {
        "net_arch": {"pi": list(arch.pi), "qf": list(qf)},
        "activation_fn": nn.ReLU,
        "actor_activation_fn": ACTIVATIONS[arch.activation],
        **kwargs.pop("policy_kwargs", {}),
    }
    kwargs.setdefault("learning_starts", 0)
    policy = _OWN_ACTOR_POLICIES[algo]
    return _construct(OFF_POLICY_ALGOS[algo], policy, env, policy_kwargs, seed, verbose, kwargs)


def _construct(
    cls: type[BaseAlgorithm],
    policy: Any,
    env: Any,
    policy_kwargs: dict[str, Any],
    seed: int,
    verbose: int,
    kwargs: dict[str, Any],
) -> BaseAlgorithm:
    """``cls(policy, env, ...)`` on the CPU, silenced unless it was asked to log."""
    model = cls(
        policy, env, policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=verbose, **kwargs
    )
    if not verbose and kwargs.get("tensorboard_log") is None:
        silence(model)  # nothing asked for logs: SB3 would still make a folder per learn
    return model
