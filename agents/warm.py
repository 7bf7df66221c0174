"""Off-policy fine-tunes of a prediction: SB3's SAC and TD3 carrying the predicted policy
and a warm critic.

The prediction is a PPO ``MlpPolicy``: tanh hidden layers and an action mean that SB3
clips to the bounds. SB3's SAC and TD3 squash their action with ``tanh`` instead, and give
actor and critic one activation, so the fine-tune's policy is
:class:`~meta_rl.infra.sb3.OwnActorSACPolicy` / :class:`~meta_rl.infra.sb3.OwnActorTD3Policy`
(SB3's, with the actor's own activation). :func:`warm_start` then

* runs the predicted policy in the env for ``warm_steps`` steps (small Gaussian noise on
  its actions; every step goes into the model's replay buffer and counts in the
  fine-tune's env steps);
* copies the prediction's hidden layers into the actor exactly, and its mean's head
  rescaled to ``tanh``'s units, times ``head_gain`` (3, or ``None``: a gain per action
  dimension chosen on the warm-up states, :func:`_output_gain`);
* fits the actor's squashed output to the prediction's action, scaled to ``[-1, 1]`` and
  kept within ``1 - 1e-2`` of the bounds, on the warm-up states and jittered copies of
  them, for ``fit_updates`` small Adam steps (``tanh`` is not ``clip``: the fit closes
  the gap near the bounds).

With ``head_gain=None`` the converted actor acts within about 1% of the action range of
the prediction and starts at its return within noise (on HalfCheetahVel's validation
and test tasks); the default gain of 3 starts it steeper, which on Pendulum starts it
above the prediction and on HalfCheetahVel below (the benchmarks' notes).

With ``search`` (:func:`search_descriptor`), :func:`~meta_rl.agents.adapt` first scores the
prediction and ``search`` predictions for descriptors drawn around the task's, one
deterministic episode each from one shared start state, and keeps the best: near the task's
descriptor the mapping holds a family of policies, and on a chaotic task (a pendulum that
must be pumped up) one of them can swing up where the task's own prediction fails. Every
step of those episodes goes into the replay buffer and counts in the fine-tune's env steps;
the warm-up above then runs the chosen prediction.

The critic:

* a mapping trained by ``td3`` keeps its task-conditioned critic ``Q(s, a, d)``
  (:class:`~meta_rl.mapping.critic.TaskCritic`); for the task's descriptor it becomes an
  ordinary SB3 critic, exactly: ``d`` folded into the first layer's bias, and the env's
  action units into SB3's ``[-1, 1]`` (``a = mid + half * u``, folded the same way);
* any mapping then gets ``critic_updates`` critic-only TD steps on the warm-up
  transitions, the actor held fixed: the whole warm-up for a mapping without a critic
  (other objectives, checkpoints saved before critics were kept), a short adjustment for
  one with a critic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import polyak_update

from meta_rl.errors import ConfigError, TaskError
from meta_rl.mapping.critic import BOX_CRITIC_OBJECTIVES, TaskCritic
from meta_rl.mapping.policy import PolicySpec

SATURATION = 1e-2
"""How far inside ``[-1, 1]`` a converted actor's squashed action stays (its pre-``tanh``
target is at most ``atanh(1 - SATURATION)``, about 2.65): a bang-bang prediction stays
learnable by gradient instead of sitting where ``tanh``'s slope is zero."""


@dataclass(frozen=True, kw_only=True)
class WarmStart:
    """How an off-policy fine-tune starts from a prediction (the keys of a recipe's
    ``finetune_off_policy`` settings that are not SB3's).

    Attributes:
        warm_steps: Env steps of the predicted policy before learning (they fill the
            replay buffer and give the states the actor is fitted on; counted).
        warm_noise: Std of the Gaussian noise on those actions, as a fraction of the
            action half-range.
        head_gain: The gain of the copied mean's head before ``tanh``. ``None``: one per
            action dimension, the one whose ``tanh`` is closest to the prediction's clipped
            action on the warm-up states (:func:`_output_gain`), so that the converted
            actor starts where the prediction acts. The default, 3, starts it steeper,
            its actions pushed toward the bounds (on Pendulum's torque-limited swing-ups
            that starts above the prediction; the fit then pulls it back only partly).
        fit_updates: Adam steps fitting the new actor to the prediction.
        critic_updates: Critic-only TD steps on the warm-up transitions.
        log_std: SAC's initial log standard deviation (pre-``tanh``), the same in every
            state.
        search: Descriptors drawn around the task's whose predictions are scored against
            the task's own before the warm-up (:func:`search_descriptor`; one episode each,
            counted); 0: no search, the task's prediction is used.
        search_scale: Std of those draws, in descriptor units (each feature's bounds span
            2).
        actor_delay: Env steps of the fine-tune during which the actor is held (its
            optimizer skips its steps) while the critic learns from the fresh transitions
            of the held policy; the gradient steps that follow the last of them are the
            actor's first. 0: the actor learns from the first step.
    """

    warm_steps: int = 400
    warm_noise: float = 0.1
    head_gain: float | None = 3.0
    fit_updates: int = 1000
    critic_updates: int = 500
    log_std: float = -2.0
    search: int = 0
    search_scale: float = 0.2
    actor_delay: int = 0

    @classmethod
    def split(cls, settings: Mapping[str, Any]) -> tuple[WarmStart, dict[str, Any]]:
        """The warm-start settings among ``settings``, and the rest (SB3's)."""
        names = {f.name for f in fields(cls)}
        own = {k: v for k, v in settings.items() if k in names}
        return cls(**own), {k: v for k, v in settings.items() if k not in names}

    def __post_init__(self) -> None:
        for name in ("warm_steps", "fit_updates", "critic_updates", "search", "actor_delay"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a whole number of at least 0, got {value!r}")
        if self.warm_steps < 1 and self.fit_updates > 0:
            raise ConfigError("warm_steps must be at least 1: the actor is fitted on its states")
        if self.warm_steps < 1 and self.critic_updates > 0 and self.search == 0:
            raise ConfigError(
                "warm_steps must be at least 1 (or search at least 1): the critic warms up "
                "on their transitions"
            )
        if not 0 <= self.warm_noise <= 1:
            raise ConfigError(f"warm_noise must be in [0, 1], got {self.warm_noise!r}")
        gain = self.head_gain
        if gain is not None and (
            not isinstance(gain, int | float) or isinstance(gain, bool) or not 0 < gain <= 10
        ):
            raise ConfigError(
                f"head_gain must be a number in (0, 10], or None (null in a candidate's "
                f"settings) for one gain per action dimension; got {gain!r}"
            )
        if not -10 <= self.log_std <= 2:
            raise ConfigError(f"log_std must be in [-10, 2], got {self.log_std!r}")
        if not 0 < self.search_scale <= 2:
            raise ConfigError(f"search_scale must be in (0, 2], got {self.search_scale!r}")


def _bounds(model: OffPolicyAlgorithm) -> tuple[torch.Tensor, torch.Tensor]:
    space = model.action_space
    low = torch.as_tensor(np.asarray(space.low, dtype=np.float32))
    high = torch.as_tensor(np.asarray(space.high, dtype=np.float32))
    return low, high


def _pre_tanh(model: OffPolicyAlgorithm, obs: torch.Tensor) -> torch.Tensor:
    """The actor's deterministic action before ``tanh``."""
    if isinstance(model, SAC):
        return model.actor.get_action_dist_params(obs)[0]
    features = model.actor.extract_features(obs, model.actor.features_extractor)
    return model.actor.mu[:-1](features)  # TD3's mu ends in nn.Tanh


def warm_start(
    model: OffPolicyAlgorithm,
    spec: PolicySpec,
    params: torch.Tensor,
    warm: WarmStart,
    *,
    critic: TaskCritic | None,
    descriptor: np.ndarray,
    seed: int,
) -> int:
    """Give a fresh SB3 SAC or TD3 ``model`` the predicted policy ``params`` (flat
    ``MlpPolicy`` parameters of ``spec``) and a warm critic, as the module says; returns the
    env steps taken (``warm.warm_steps``, rounded up to a multiple of the model's envs)."""
    generator = torch.Generator().manual_seed(seed)
    actor = params[spec.actor_rows][None]
    low, high = _bounds(model)
    mid, half = (high + low) / 2, (high - low) / 2

    def predicted(obs: torch.Tensor) -> torch.Tensor:
        """The prediction's action as SB3 acts with it: the mean, clipped."""
        mean = spec.action_mean(actor, obs[None])[0]
        return torch.maximum(torch.minimum(mean, high), low)

    states = _rollout(model, predicted, warm, generator, mid, half)
    if warm.head_gain is None:
        with torch.no_grad():
            gain = _output_gain((spec.action_mean(actor, states[None])[0] - mid) / half)
    else:
        gain = torch.full_like(mid, float(warm.head_gain))
    _copy_actor(model, spec, params, mid, half, gain)
    if isinstance(model, SAC):
        with torch.no_grad():
            model.actor.log_std.weight.zero_()
            model.actor.log_std.bias.fill_(warm.log_std)
    _fit_actor(model, predicted, states, warm.fit_updates, generator, mid, half)
    if isinstance(model, TD3):  # the critic's warm-up bootstraps from the actor's target
        model.actor_target.load_state_dict(model.actor.state_dict())
    if critic is not None:
        _load_critic(model, critic, descriptor, mid, half)
    _critic_updates(model, warm.critic_updates)
    _fresh_optimizers(model)
    if warm.actor_delay:
        _hold_actor(model, warm.actor_delay)
    return len(states)  # warm_steps, rounded up to whole steps of every env


def _rollout(
    model: OffPolicyAlgorithm,
    predicted: Any,
    warm: WarmStart,
    generator: torch.Generator,
    mid: torch.Tensor,
    half: torch.Tensor,
) -> torch.Tensor:
    """``warm.warm_steps`` env steps of the noisy prediction on ``model.env`` into the
    replay buffer (as SB3 stores its own: actions in ``[-1, 1]``, the final observation of
    an episode as its next one); returns the states visited."""
    env = model.env
    obs = env.reset()
    states = []
    for _ in range(-(-warm.warm_steps // env.num_envs)):
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        with torch.no_grad():
            action = predicted(x)
        noise = torch.randn(action.shape, generator=generator) * warm.warm_noise * half
        action = torch.maximum(torch.minimum(action + noise, mid + half), mid - half)
        states.append(x)
        obs, _, _ = _stored_step(model, obs, action, mid, half)
    model._last_obs = obs  # learn() goes on from here unless it resets the env
    return torch.cat(states) if states else torch.empty((0, *np.shape(obs)[1:]))


def _stored_step(
    model: OffPolicyAlgorithm,
    obs: np.ndarray,
    action: torch.Tensor,
    mid: torch.Tensor,
    half: torch.Tensor,
    *,
    cut: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of ``model.env`` with ``action`` (env units), stored in the replay buffer
    as SB3 stores its own (actions in ``[-1, 1]``, the final observation of an episode as
    its next one); returns the next observations, the rewards and the dones. ``cut``: the
    caller ends the episode here, stored as a time limit's end (so that neither a TD
    target nor an n-step sum runs into the next episode)."""
    new_obs, rewards, dones, infos = model.env.step(action.numpy())
    after = np.array(new_obs, copy=True)
    for i, done in enumerate(dones):
        if done and infos[i].get("terminal_observation") is not None:
            after[i] = infos[i]["terminal_observation"]
    if cut:
        stored_dones = np.ones_like(dones)
        infos = [
            {**info, "TimeLimit.truncated": True} if not done else info
            for info, done in zip(infos, dones, strict=True)
        ]
    else:
        stored_dones = dones
    scaled = ((action - mid) / half).numpy()
    model.replay_buffer.add(obs, after, scaled, rewards, stored_dones, infos)
    return new_obs, rewards, dones


SEARCH_HORIZON = 1000
"""The most env steps of one candidate's episode in :func:`search_descriptor` (an env
without a time limit is cut there, and the cut is stored as a time limit's)."""
SEARCH_SEED = 2_000_003
"""Offset of the search's seed from the fine-tune's (``adapt``'s ``seed``): its shared
start never repeats an evaluation episode's (``evaluate`` seeds its episodes ``seed``,
``seed + 1``, ...), and its draws are not the warm-up's noise."""


def search_descriptor(
    model: OffPolicyAlgorithm,
    spec: PolicySpec,
    predict: Callable[[torch.Tensor], torch.Tensor],
    descriptor: torch.Tensor,
    warm: WarmStart,
    *,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The best of the prediction for ``descriptor`` and ``warm.search`` predictions for
    descriptors drawn around it (Gaussian, std ``warm.search_scale``), each scored by the
    return of one deterministic episode on ``model.env`` from the same start state (reset
    seeded ``seed + SEARCH_SEED``): a paired comparison, so a candidate wins on its policy,
    not on an easy start. Ties keep the earlier candidate, the task's own prediction first.

    A draw is kept within the task space's bounds (``[-1, 1]`` per feature), or where the
    task itself lies outside them, no further out than the task; a draw whose prediction is
    not finite is skipped.

    Every step goes into the model's replay buffer. Returns the chosen descriptor, its
    prediction (``predict(descriptor)``) and the env steps taken.

    Raises:
        ConfigError: ``model.env`` holds more than one env (the candidates share one start
            state, which one env gives).
    """
    env = model.env
    if env.num_envs != 1:
        raise ConfigError(
            f"search runs its candidates one after another on one env; this fine-tune has "
            f"{env.num_envs} (give one env, or search=0)"
        )
    generator = torch.Generator().manual_seed(seed + SEARCH_SEED)
    low, high = _bounds(model)
    mid, half = (high + low) / 2, (high - low) / 2
    draws = torch.randn((warm.search, descriptor.numel()), generator=generator)
    inside = (
        torch.minimum(descriptor, torch.tensor(-1.0)),
        torch.maximum(descriptor, torch.tensor(1.0)),
    )
    drawn = torch.clamp(descriptor + warm.search_scale * draws, *inside)
    best, best_params, best_return, steps = descriptor, None, -np.inf, 0
    for candidate in [descriptor, *drawn]:
        try:
            params = predict(candidate)
        except TaskError:
            if best_params is None:
                raise  # the task's own prediction: the caller's error
            continue
        actor = params[spec.actor_rows][None]
        env.seed(seed + SEARCH_SEED)
        obs, total = env.reset(), 0.0
        for step in range(SEARCH_HORIZON):
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            with torch.no_grad():
                action = torch.clamp(spec.action_mean(actor, x[None])[0], low, high)
            cut = step == SEARCH_HORIZON - 1
            obs, rewards, dones = _stored_step(model, obs, action, mid, half, cut=cut)
            total, steps = total + float(rewards[0]), steps + 1
            if dones[0]:
                break
        if best_params is None or total > best_return:
            best, best_params, best_return = candidate, params, total
    return best, best_params, steps


FIT_LR = 1e-4
"""Adam's learning rate in the fit: small, as the fit starts from the copied layers."""
GAINS = torch.linspace(0.5, 4.0, 36)
"""The gains :func:`_output_gain` chooses from."""


def _output_gain(scaled: torch.Tensor) -> torch.Tensor:
    """Per action dimension, the gain ``g`` (of :data:`GAINS`) whose ``tanh(g z)`` is
    closest, in mean square over the warm-up states, to the prediction's clipped action
    ``clip(z, -1, 1)``, where ``z`` (``scaled``, states x dimensions) is its mean in
    ``[-1, 1]`` units (the target kept within ``1 - SATURATION`` of the bounds, as the
    fit's). A dimension that acts mostly inside the bounds gets a gain near 1 (``tanh(z)``
    is ``z`` near 0); one that acts at the bounds, the gain that puts ``tanh`` there. The
    copied head starts at that gain and the fit corrects what one gain cannot. No states:
    1."""
    if len(scaled) == 0:
        return torch.ones(scaled.shape[-1])
    target = scaled.clamp(-1, 1) * (1 - SATURATION)
    squashed = torch.tanh(GAINS[:, None, None] * scaled[None])
    return GAINS[((squashed - target[None]) ** 2).mean(1).argmin(0)]


def _actor_linears(model: OffPolicyAlgorithm) -> list[torch.nn.Linear]:
    """The actor's linear layers, input to output (the mean's head last)."""
    if isinstance(model, SAC):
        modules = [*model.actor.latent_pi, model.actor.mu]
    else:
        modules = list(model.actor.mu)
    return [m for m in modules if isinstance(m, torch.nn.Linear)]


def _copy_actor(
    model: OffPolicyAlgorithm,
    spec: PolicySpec,
    params: torch.Tensor,
    mid: torch.Tensor,
    half: torch.Tensor,
    gain: torch.Tensor,
) -> None:
    """The prediction's actor into ``model``'s: its hidden layers exactly, its mean's head
    rescaled from the env's units to ``tanh``'s (``(mean - mid) / half``, times ``gain``
    per action dimension)."""
    named = spec.unflatten(params)
    hidden = sorted(
        {int(n.split(".")[2]) for n in named if n.startswith("mlp_extractor.policy_net.")}
    )
    sources = [
        (named[f"mlp_extractor.policy_net.{i}.weight"], named[f"mlp_extractor.policy_net.{i}.bias"])
        for i in hidden
    ]
    weight, bias = named["action_net.weight"], named["action_net.bias"]
    # Not gain / half: torch computes a scalar / tensor as reciprocal() * scalar, so this
    # is the 3.0 / half of earlier versions to the last bit (their fine-tunes repeat).
    scale = gain * half.reciprocal()
    sources.append((weight * scale[:, None], (bias - mid) * scale))
    linears = _actor_linears(model)
    if [tuple(lin.weight.shape) for lin in linears] != [tuple(w.shape) for w, _ in sources]:
        raise ConfigError(
            "the fine-tune's actor must have the prediction's layers (net_arch pi = the "
            "mapping's policy's pi)"
        )
    with torch.no_grad():
        for lin, (w, b) in zip(linears, sources, strict=True):
            lin.weight.copy_(w)
            lin.bias.copy_(b)


def _fit_actor(
    model: OffPolicyAlgorithm,
    predicted: Any,
    states: torch.Tensor,
    updates: int,
    generator: torch.Generator,
    mid: torch.Tensor,
    half: torch.Tensor,
) -> None:
    """Regress the actor's pre-``tanh`` output on ``atanh`` of the prediction's scaled
    action, on ``states`` and copies jittered by a tenth of each feature's spread."""
    if updates == 0:
        return
    spread = states.std(0, keepdim=True).clamp_min(1e-3)
    limit = float(np.arctanh(1 - SATURATION))
    optimizer = torch.optim.Adam(model.actor.parameters(), lr=FIT_LR)
    model.actor.set_training_mode(True)
    for _ in range(updates):
        pick = torch.randint(len(states), (256,), generator=generator)
        batch = states[pick]
        jitter = torch.randn(batch.shape, generator=generator) * spread * 0.1
        batch = torch.cat([batch, batch + jitter])
        with torch.no_grad():
            target = ((predicted(batch) - mid) / half).clamp(-1, 1) * (1 - SATURATION)
        pre = _pre_tanh(model, batch)
        beyond = F.relu(pre.abs() - limit)
        loss = F.mse_loss(torch.tanh(pre), target) + (beyond**2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.actor.set_training_mode(False)


def _load_critic(
    model: OffPolicyAlgorithm,
    critic: TaskCritic,
    descriptor: np.ndarray,
    mid: torch.Tensor,
    half: torch.Tensor,
) -> None:
    """The task-conditioned critic, folded for ``descriptor`` and for SB3's action scale,
    into ``model``'s critic and its target."""
    if critic.objective not in BOX_CRITIC_OBJECTIVES:
        raise ConfigError(f"a {critic.objective} critic cannot warm a Box-action fine-tune")
    nets = critic.for_task(descriptor)
    obs_dim = model.observation_space.shape[0]
    for module in (model.critic, model.critic_target):
        if len(module.q_networks) != len(nets):
            raise ConfigError("the fine-tune's critic must be a twin critic (n_critics=2)")
        for q_net, layers in zip(module.q_networks, nets, strict=True):
            linears = [m for m in q_net if isinstance(m, torch.nn.Linear)]
            if [tuple(lin.weight.shape) for lin in linears] != [
                tuple(w.shape) for w in layers[0::2]
            ]:
                raise ConfigError(
                    f"the fine-tune's critic layers must be the mapping's critic's: net_arch "
                    f"qf={list(critic.hidden)}"
                )
            weight, bias = layers[0].clone(), layers[1].clone()
            # a = mid + half * u: the action columns take half, the bias takes mid.
            w_action = weight[:, obs_dim:]
            bias += w_action @ mid
            weight[:, obs_dim:] = w_action * half
            layers = [weight, bias, *layers[2:]]
            with torch.no_grad():
                for lin, w, b in zip(linears, layers[0::2], layers[1::2], strict=True):
                    lin.weight.copy_(w)
                    lin.bias.copy_(b)


def _critic_updates(model: OffPolicyAlgorithm, updates: int) -> None:
    """Critic-only TD steps (policy evaluation of the model's actor) on its buffer."""
    if updates == 0:
        return
    batch_size = model.batch_size
    optimizer = torch.optim.Adam(model.critic.parameters(), lr=model.lr_schedule(1.0))
    model.policy.set_training_mode(True)
    for _ in range(updates):
        data = model.replay_buffer.sample(batch_size, env=model._vec_normalize_env)
        target = _td_target(model, data)
        current = model.critic(data.observations, data.actions)
        loss = sum(F.mse_loss(q, target) for q in current)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        polyak_update(model.critic.parameters(), model.critic_target.parameters(), model.tau)
    model.policy.set_training_mode(False)


def _td_target(model: OffPolicyAlgorithm, data: Any) -> torch.Tensor:
    """The TD target of a replay sample for the model's actor (SAC's deterministic action,
    TD3's target actor): its reward plus the discounted smaller target-critic value of the
    next state, where an n-step buffer (SB3's ``n_steps``) gives each sample its own reward
    sum and discount."""
    with torch.no_grad():
        if isinstance(model, SAC):
            next_actions = model.actor(data.next_observations, deterministic=True)
        else:
            next_actions = model.actor_target(data.next_observations)
        next_q = torch.cat(model.critic_target(data.next_observations, next_actions), dim=1)
        next_q = next_q.min(dim=1, keepdim=True).values
        discounts = getattr(data, "discounts", None)  # only SB3 versions with n-step buffers
        discounts = model.gamma if discounts is None else discounts
        return data.rewards + (1 - data.dones) * discounts * next_q


def _stored(model: OffPolicyAlgorithm) -> int:
    """Transitions in the model's replay buffer (every env's), however often ``learn`` reset
    its step count."""
    buffer = model.replay_buffer
    return buffer.size() * buffer.n_envs


def _hold_actor(model: OffPolicyAlgorithm, env_steps: int) -> None:
    """Skip the actor's optimizer steps until ``env_steps`` more transitions are in the
    replay buffer (SB3 trains after each env step, so the actor's first update follows
    the last held step): the critic first learns the held policy's values on fresh data. The
    count is the buffer's, so ``learn`` called in pieces holds it once. Only this model's
    optimizer object changes: a saved, copied or pickled model comes back with a plain
    one. SAC's automatic entropy coefficient goes on learning meanwhile."""
    until = _stored(model) + env_steps
    buffer = model.replay_buffer
    if until > buffer.buffer_size * buffer.n_envs:
        raise ConfigError(
            f"actor_delay={env_steps} outlasts the replay buffer ({buffer.buffer_size} "
            f"transitions per env, {_stored(model)} already in it): give a larger "
            "buffer_size or a shorter delay"
        )
    optimizer = model.actor.optimizer
    step = optimizer.step

    def held_step(closure: Callable[[], float] | None = None) -> float | None:
        if _stored(model) < until:
            return None
        return step(closure)

    optimizer.step = held_step  # type: ignore[method-assign]


def _fresh_optimizers(model: BaseAlgorithm) -> None:
    """Fresh Adam states for the actor and critic (no moments from the fits above)."""
    lr = model.lr_schedule(1.0)
    for part in (model.actor, model.critic):
        part.optimizer = part.optimizer.__class__(part.parameters(), lr=lr)
