"""MAML for RL (Finn et al. 2017), implemented with ``torch.func``: a baseline.

Meta-training learns initial policy parameters ``theta`` such that one policy-gradient step
on a new task's own episodes,

    theta' = theta - alpha * grad L_task(theta),

gives a good policy. The outer loss is the policy-gradient loss of ``theta'`` on fresh
episodes, differentiated through the inner step (second order). The policy is the same
SB3 ``MlpPolicy`` as the mapping's, evaluated functionally from a flat vector; the
advantage is the reward-to-go minus its mean over the batch's episodes at each time step
(the paper used a linear baseline; this one needs no fitting). Libraries that offered MAML
for RL no longer install on current Python, hence this compact version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from meta_rl.envs import Family, Task
from meta_rl.evaluation import ParamsPolicy, run_episodes
from meta_rl.policy_spec import PolicyArch, PolicySpec, build_policy


@dataclass(frozen=True, kw_only=True)
class MamlConfig:
    """Settings of MAML meta-training.

    Attributes:
        meta_batch: Tasks per meta-update.
        episodes: Episodes per task for the inner step, and again for the outer loss.
        inner_lr: Step size ``alpha`` of the inner policy-gradient step.
        outer_lr: Adam learning rate of the meta-update.
        gamma: Discount of the reward-to-go.
        max_steps: Cut episodes to this many steps (default: the family's time limit).
    """

    meta_batch: int = 10
    episodes: int = 10
    inner_lr: float = 0.1
    outer_lr: float = 1e-3
    gamma: float = 0.99
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.meta_batch < 1 or self.episodes < 2:
            raise ValueError("meta_batch must be at least 1 and episodes at least 2")
        if not (self.inner_lr > 0 and self.outer_lr > 0 and 0 < self.gamma <= 1):
            raise ValueError("inner_lr and outer_lr must be positive, gamma in (0, 1]")


@dataclass
class Episodes:
    """A batch of equal-length episodes: obs ``(E, T, O)``, actions, advantages ``(E, T)``."""

    obs: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    returns: np.ndarray


def sample_episodes(
    spec: PolicySpec,
    params: torch.Tensor,
    family: Family,
    task: Task,
    *,
    episodes: int,
    gamma: float,
    rng: np.random.Generator,
    max_steps: int | None = None,
) -> Episodes:
    """Run ``episodes`` stochastic episodes of ``params`` on ``task`` side by side."""
    envs = [family.make(task=task) for _ in range(episodes)]
    limit = max_steps or family.max_episode_steps or 1000
    obs = np.stack([e.reset(seed=int(rng.integers(2**31)))[0] for e in envs]).astype(np.float32)
    alive = np.ones(episodes, dtype=bool)
    all_obs, all_act, all_rew, all_mask = [], [], [], []
    discrete = spec.arch.action_kind == "discrete"
    with torch.no_grad():
        for _ in range(limit):
            out = spec.forward(params, torch.as_tensor(obs))
            if discrete:
                probs = torch.softmax(out.mean, -1).numpy().astype(np.float64)
                act = np.array([rng.choice(p.size, p=p / p.sum()) for p in probs])
            else:
                std = out.log_std.exp().numpy()
                act = out.mean.numpy() + std * rng.standard_normal(out.mean.shape)
            active = alive.copy()
            rewards = np.zeros(episodes)
            next_obs = obs.copy()
            for i, env in enumerate(envs):
                if not alive[i]:
                    continue
                a = (
                    int(act[i])
                    if discrete
                    else np.clip(act[i], env.action_space.low, env.action_space.high).astype(
                        np.float32
                    )
                )
                o, r, term, trunc, _ = env.step(a)
                rewards[i], next_obs[i] = r, o
                if term or trunc:
                    alive[i] = False
            all_obs.append(obs)
            all_act.append(act)
            all_rew.append(rewards)
            all_mask.append(active)
            obs = next_obs.astype(np.float32)
            if not alive.any():
                break
    for env in envs:
        env.close()
    rew = np.stack(all_rew, 1)  # (E, T)
    mask = np.stack(all_mask, 1).astype(np.float64)  # 1 where the step happened
    togo = np.zeros_like(rew)
    running = np.zeros(episodes)
    for t in range(rew.shape[1] - 1, -1, -1):
        running = rew[:, t] + gamma * running
        togo[:, t] = running
    counts = np.maximum(mask.sum(0), 1.0)
    baseline = (togo * mask).sum(0) / counts
    adv = (togo - baseline) * mask
    std = adv[mask > 0].std() + 1e-8
    return Episodes(
        obs=torch.as_tensor(np.stack(all_obs, 1)),
        actions=torch.as_tensor(np.stack(all_act, 1), dtype=torch.float32),
        advantages=torch.as_tensor(adv / std, dtype=torch.float32),
        mask=torch.as_tensor(mask, dtype=torch.float32),
        returns=rew.sum(1),
    )


def pg_loss(spec: PolicySpec, params: torch.Tensor, batch: Episodes) -> torch.Tensor:
    """REINFORCE loss ``-mean(log pi(a|s) * A)`` over the steps that happened."""
    e, t = batch.obs.shape[:2]
    out = spec.forward(params, batch.obs.reshape(e * t, -1))
    if spec.arch.action_kind == "discrete":
        logp = (
            torch.log_softmax(out.mean, -1)
            .gather(-1, batch.actions.reshape(-1, 1).long())
            .squeeze(-1)
        )
    else:
        log_std = out.log_std.expand_as(out.mean)
        z = (batch.actions.reshape(e * t, -1) - out.mean) / log_std.exp()
        logp = (-0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    weights = (batch.advantages * batch.mask).reshape(-1)
    return -(logp * weights).sum() / batch.mask.sum()


def adapt_params(
    spec: PolicySpec,
    params: torch.Tensor,
    batch: Episodes,
    inner_lr: float,
    *,
    create_graph: bool = False,
) -> torch.Tensor:
    """One inner policy-gradient step; differentiable when ``create_graph``."""
    if create_graph:
        grad = torch.func.grad(lambda p: pg_loss(spec, p, batch))(params)
    else:
        with torch.enable_grad():
            p = params.detach().requires_grad_(True)
            grad = torch.autograd.grad(pg_loss(spec, p, batch), p)[0]
    return params - inner_lr * grad


def meta_train(
    family: Family,
    tasks: Sequence[Task],
    arch: PolicyArch,
    config: MamlConfig,
    *,
    steps: int,
    seed: int,
    progress: bool = False,
) -> torch.Tensor:
    """Meta-train initial parameters on ``tasks`` for about ``steps`` env steps."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    spec = PolicySpec(arch)
    theta = spec.flatten(build_policy(arch)).requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=config.outer_lr)
    used = 0
    bar = tqdm(total=steps, desc="MAML", unit="step", disable=not progress)
    while used < steps:
        picked = [tasks[int(i)] for i in rng.integers(len(tasks), size=config.meta_batch)]
        outer = []
        for task in picked:

            def run(params: torch.Tensor, task: Task = task) -> Episodes:
                return sample_episodes(
                    spec,
                    params.detach(),
                    family,
                    task,
                    episodes=config.episodes,
                    gamma=config.gamma,
                    rng=rng,
                    max_steps=config.max_steps,
                )

            inner = run(theta)
            adapted = adapt_params(spec, theta, inner, config.inner_lr, create_graph=True)
            fresh = run(adapted)
            outer.append(pg_loss(spec, adapted, fresh))
            n = int(inner.mask.sum() + fresh.mask.sum())
            used += n
            bar.update(n)
        optimizer.zero_grad()
        torch.stack(outer).mean().backward()
        optimizer.step()
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
    """Return before and after one inner step on ``task``, and the env steps that step used."""
    rng = np.random.default_rng(seed)
    batch = sample_episodes(
        spec,
        theta,
        family,
        task,
        episodes=config.episodes,
        gamma=config.gamma,
        rng=rng,
        max_steps=config.max_steps,
    )
    adapted = adapt_params(spec, theta, batch, config.inner_lr).detach()
    env = family.make(task=task)
    try:
        before = float(
            np.mean(
                run_episodes(
                    env,
                    ParamsPolicy(spec, theta, env.action_space),
                    episodes=episodes,
                    seed=seed + 1,
                )
            )
        )
        after = float(
            np.mean(
                run_episodes(
                    env,
                    ParamsPolicy(spec, adapted, env.action_space),
                    episodes=episodes,
                    seed=seed + 1,
                )
            )
        )
    finally:
        env.close()
    return before, after, int(batch.mask.sum())
