"""MAML for RL (Finn et al. 2017), implemented with ``torch.func``: a baseline.

Meta-training learns initial policy parameters ``theta`` such that one policy-gradient step
on a new task's own episodes,

    theta'_k = theta - alpha * grad L_k(theta),

gives a good policy for task ``k``. The outer objective is the return of ``theta'_k`` on
fresh episodes, differentiated through the inner step (second order).

As in the paper, advantages come from a linear feature baseline fitted to each task's
episodes (features: the observation, its square, and powers of time). The paper's outer
step is TRPO; this one is its first-order cousin PPO: a few Adam epochs on the clipped
surrogate of the fresh episodes, re-adapting ``theta'_k`` from the current ``theta`` in
every epoch. The inner loss is the likelihood-ratio surrogate ``-E[pi/pi_old * A]``,
whose gradient at the sampling policy is exactly REINFORCE's and which stays correct as
``theta`` moves away from it over the epochs. All tasks of a meta-batch are rolled out side
by side in the family's batched env where it has one; the policy is the mapping's SB3
``MlpPolicy``, evaluated functionally from a flat vector per task. Libraries that offered
MAML for RL no longer install on current Python, hence this compact version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from meta_rl.envs import Family, Task
from meta_rl.errors import ConfigError
from meta_rl.evaluation import ParamsPolicy, run_episodes
from meta_rl.mapping.policy import (
    PolicyArch,
    PolicySpec,
    action_distribution,
    action_log_prob,
    build_policy,
    sample_actions,
)
from meta_rl.objectives.advantages import gae
from meta_rl.objectives.task_envs import TaskEnvs


@dataclass(frozen=True, kw_only=True)
class MamlConfig:
    """Settings of MAML meta-training.

    Attributes:
        meta_batch: Tasks per meta-update.
        episodes: Episodes per task for the inner step, and again for the outer loss.
        inner_lr: Step size ``alpha`` of the inner policy-gradient step.
        outer_lr: Adam learning rate of the meta-update.
        outer_epochs: Adam steps on one meta-batch's clipped surrogate (PPO's epochs).
        clip_range: Ratio clip of the outer surrogate.
        max_grad_norm: Gradient-norm clip of the meta-update.
        gamma: Discount.
        gae_lambda: GAE's lambda over the linear baseline (1: reward-to-go minus baseline).

    The defaults were chosen on Pendulum's training and validation tasks: small
    meta-batches, so that the equal env-step budget of the benchmark buys many
    meta-updates, and PPO's epochs on each.
        max_steps: Cut episodes to this many steps (default: the family's time limit).
        batched: Roll out on the family's batched env where it has one.
    """

    meta_batch: int = 10
    episodes: int = 4
    inner_lr: float = 0.1
    outer_lr: float = 3e-3
    outer_epochs: int = 10
    clip_range: float = 0.2
    max_grad_norm: float = 1.0
    gamma: float = 0.99
    gae_lambda: float = 0.95
    max_steps: int | None = None
    batched: bool = True

    def __post_init__(self) -> None:
        if self.meta_batch < 1 or self.episodes < 2 or self.outer_epochs < 1:
            raise ConfigError("meta_batch and outer_epochs must be at least 1, episodes at least 2")
        for name in ("inner_lr", "outer_lr", "clip_range", "max_grad_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ConfigError("gamma must be in (0, 1] and gae_lambda in [0, 1]")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps must be at least 1")


@dataclass
class Episodes:
    """Episodes of ``K`` tasks, ``E`` each, cut to ``T`` steps, flattened per task.

    Attributes:
        obs: ``(K, E*T, obs_dim)``.
        actions: ``(K, E*T, action_dim)``, or ``(K, E*T)`` for discrete actions.
        log_prob: Log-probability of each action under the policy that acted, ``(K, E*T)``.
        advantages: Normalised per task, zero where no step happened, ``(K, E*T)``.
        mask: 1 where a step happened, ``(K, E*T)``.
        returns: Undiscounted return of every episode, ``(K, E)``.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_prob: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    returns: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.mask.sum())


def _baseline_values(obs: np.ndarray, togo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The paper's linear feature baseline for one task's episodes ``(E, T, ...)``: a ridge
    regression of the reward-to-go on ``[s, s^2, t, t^2, t^3, 1]`` (``t`` scaled by 1/100)."""
    e, t_max, _ = obs.shape
    clipped = np.clip(obs, -10, 10)
    t = np.broadcast_to(np.arange(t_max, dtype=np.float64)[None, :, None] / 100.0, (e, t_max, 1))
    feats = np.concatenate([clipped, clipped**2, t, t**2, t**3, np.ones_like(t)], axis=-1)
    rows = mask.reshape(-1) > 0
    x, y = feats.reshape(-1, feats.shape[-1])[rows], togo.reshape(-1)[rows]
    reg = 1e-5
    for _ in range(5):  # raise the ridge until the solve is finite, as rllab does
        coef, *_ = np.linalg.lstsq(x.T @ x + reg * np.eye(x.shape[1]), x.T @ y, rcond=None)
        if np.isfinite(coef).all():
            break
        reg *= 10
    return (feats @ coef) * mask


def sample_episodes(
    spec: PolicySpec,
    params: torch.Tensor,
    family: Family,
    tasks: Sequence[Task],
    *,
    episodes: int,
    config: MamlConfig,
    generator: torch.Generator,
    seed: int,
) -> Episodes:
    """Run ``episodes`` stochastic episodes on each task side by side.

    Args:
        params: One parameter vector for all tasks ``(P,)``, or one per task ``(K, P)``.
        tasks: The ``K`` tasks.
        generator: Source of the actions.
        seed: Seed of the resets.
    """
    k = len(tasks)
    rows = params.detach().expand(k, -1) if params.dim() == 1 else params.detach()
    rows = rows.repeat_interleave(episodes, dim=0)  # (K*E, P), task-major
    n = k * episodes
    limit = config.max_steps or family.max_episode_steps or 1000
    envs = TaskEnvs(family, [t for t in tasks for _ in range(episodes)], batched=config.batched)
    try:
        obs = envs.reset(seed)
        alive = np.ones(n, dtype=bool)
        all_obs, all_act, all_logp, all_rew, all_mask = [], [], [], [], []
        for _ in range(limit):
            # A copy: an env may hand back the same array next step.
            x = torch.tensor(np.asarray(obs, dtype=np.float32)).reshape(n, 1, -1)
            with torch.no_grad():
                out = spec.forward(rows, x)
                action = sample_actions(spec, out, generator)
                logp = action_log_prob(spec, action_distribution(spec, out), action)[:, 0]
            all_obs.append(x[:, 0])
            all_act.append(action[:, 0])
            all_logp.append(logp)
            all_mask.append(alive.copy())
            obs, reward, terminated, truncated, _ = envs.step(action[:, 0].numpy())
            all_rew.append(np.where(alive, reward, 0.0))
            alive &= ~(terminated | truncated)
            if not alive.any():
                break
    finally:
        envs.close()
    t_max = len(all_rew)
    obs_np = torch.stack(all_obs, 1).numpy().astype(np.float64)  # (N, T, O)
    rew = np.stack(all_rew, 1)
    mask = np.stack(all_mask, 1).astype(np.float64)
    togo = np.zeros_like(rew)
    running = np.zeros(n)
    for t in range(t_max - 1, -1, -1):
        running = rew[:, t] + config.gamma * running
        togo[:, t] = running
    values = np.zeros((n, t_max + 1))  # a zero column past the last step
    for task in range(k):  # one baseline per task, fitted to its own episodes
        sl = slice(task * episodes, (task + 1) * episodes)
        values[sl, :t_max] = _baseline_values(obs_np[sl], togo[sl], mask[sl])
    next_live = np.concatenate([mask[:, 1:], np.zeros((n, 1))], axis=1)
    adv = gae(
        rew,
        values[:, :t_max],
        values[:, 1:],
        next_live,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
    )
    adv *= mask
    for task in range(k):
        sl = slice(task * episodes, (task + 1) * episodes)
        valid = adv[sl][mask[sl] > 0]
        adv[sl] = (adv[sl] - valid.mean()) / (valid.std() + 1e-8) * mask[sl]

    def per_task(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(k, episodes * t_max, *x.shape[2:])

    actions = torch.stack(all_act, 1)
    return Episodes(
        obs=per_task(torch.stack(all_obs, 1)),
        actions=per_task(actions),
        log_prob=per_task(torch.stack(all_logp, 1)),
        advantages=per_task(torch.as_tensor(adv, dtype=torch.float32)),
        mask=per_task(torch.as_tensor(mask, dtype=torch.float32)),
        returns=rew.sum(1).reshape(k, episodes),
    )


def _ratio(spec: PolicySpec, params: torch.Tensor, batch: Episodes) -> torch.Tensor:
    """``pi_params(a|s) / pi_old(a|s)`` per step ``(K, E*T)``; 1 where no step happened (a
    finished episode's slots), so that they can never overflow."""
    out = spec.forward(params, batch.obs)
    logp = action_log_prob(spec, action_distribution(spec, out), batch.actions)
    return torch.exp(torch.where(batch.mask > 0, logp - batch.log_prob, 0.0))


def inner_loss(spec: PolicySpec, params: torch.Tensor, batch: Episodes) -> torch.Tensor:
    """Per-task policy-gradient loss ``-mean(pi/pi_old * A)`` over the steps that happened,
    ``(K,)``; at the sampling policy its gradient is REINFORCE's."""
    ratio = _ratio(spec, params, batch)
    return -(ratio * batch.advantages).sum(1) / batch.mask.sum(1).clamp(min=1)


def adapt_params(
    spec: PolicySpec,
    theta: torch.Tensor,
    batch: Episodes,
    inner_lr: float,
    *,
    create_graph: bool = False,
) -> torch.Tensor:
    """One inner policy-gradient step per task: ``(K, P)`` adapted parameters.

    With ``create_graph`` the result stays a differentiable function of ``theta`` (second
    order); otherwise it is detached.
    """
    k = batch.obs.shape[0]
    with torch.enable_grad():
        if create_graph:
            rows = theta.unsqueeze(0).repeat(k, 1)
        else:
            rows = theta.detach().unsqueeze(0).repeat(k, 1).requires_grad_(True)
        # Task k's loss depends on row k only, so one gradient holds every task's.
        (grad,) = torch.autograd.grad(
            inner_loss(spec, rows, batch).sum(), rows, create_graph=create_graph
        )
    adapted = rows - inner_lr * grad
    return adapted if create_graph else adapted.detach()


def outer_loss(
    spec: PolicySpec, adapted: torch.Tensor, batch: Episodes, clip_range: float
) -> torch.Tensor:
    """PPO's clipped surrogate of the adapted policies on their own fresh episodes."""
    ratio = _ratio(spec, adapted, batch)
    adv = batch.advantages
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv)
    return -((surrogate * batch.mask).sum(1) / batch.mask.sum(1).clamp(min=1)).mean()


def meta_train(
    family: Family,
    tasks: Sequence[Task],
    arch: PolicyArch,
    config: MamlConfig,
    *,
    steps: int,
    seed: int,
    progress: bool = False,
    history: list[dict[str, float]] | None = None,
) -> torch.Tensor:
    """Meta-train initial parameters on ``tasks`` for about ``steps`` env steps (every
    step of the inner and the outer episodes counts).

    Args:
        history: If given, one entry per meta-update is appended: env steps so far and the
            mean episode return before and after the inner step.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    spec = PolicySpec(arch)
    theta = spec.flatten(build_policy(arch)).requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=config.outer_lr)
    used, update = 0, 0
    bar = tqdm(total=steps, desc="MAML", unit="step", disable=not progress)
    while used < steps:
        picked = [tasks[int(i)] for i in rng.integers(len(tasks), size=config.meta_batch)]
        inner = sample_episodes(
            spec,
            theta,
            family,
            picked,
            episodes=config.episodes,
            config=config,
            generator=generator,
            seed=seed * 100_003 + 2 * update,
        )
        fresh = sample_episodes(
            spec,
            adapt_params(spec, theta, inner, config.inner_lr),
            family,
            picked,
            episodes=config.episodes,
            config=config,
            generator=generator,
            seed=seed * 100_003 + 2 * update + 1,
        )
        for _ in range(config.outer_epochs):
            adapted = adapt_params(spec, theta, inner, config.inner_lr, create_graph=True)
            loss = outer_loss(spec, adapted, fresh, config.clip_range)
            optimizer.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_([theta], config.max_grad_norm)
            if not torch.isfinite(norm):
                break  # skip the rest of this meta-batch rather than step on NaN
            optimizer.step()
        used += inner.steps + fresh.steps
        update += 1
        bar.update(inner.steps + fresh.steps)
        before, after = float(inner.returns.mean()), float(fresh.returns.mean())
        bar.set_postfix(before=f"{before:.1f}", after=f"{after:.1f}")
        if history is not None:
            history.append({"env_steps": used, "before": before, "after": after})
    bar.close()
    return theta.detach()


def maml_adapt_and_evaluate(
    spec: PolicySpec,
    theta: torch.Tensor,
    family: Family,
    task: Task,
    config: MamlConfig,
    *,
    episodes: int,
    seed: int,
) -> tuple[float, float, int]:
    """Return before and after one inner step on ``task``, and the env steps that step used.

    Both are means over ``episodes`` deterministic episodes (action means) seeded ``seed,
    seed + 1, ...``, as every method of the benchmark is scored; the inner step's own
    episodes start elsewhere.
    """
    generator = torch.Generator().manual_seed(seed)
    batch = sample_episodes(
        spec,
        theta,
        family,
        [task],
        episodes=config.episodes,
        config=config,
        generator=generator,
        seed=seed + 1_000_003,
    )
    adapted = adapt_params(spec, theta, batch, config.inner_lr)[0]
    env = family.make(task=task)
    try:
        before, after = (
            float(
                np.mean(
                    run_episodes(
                        env,
                        ParamsPolicy(spec, params, env.action_space),
                        episodes=episodes,
                        seed=seed,
                    )
                )
            )
            for params in (theta, adapted)
        )
    finally:
        env.close()
    return before, after, batch.steps
