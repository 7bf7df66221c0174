"""The ``rl`` objective: PPO through the mapping network.

Each iteration draws training tasks, one environment per task, and acts in every
environment with the policy that the mapping predicts for that task's descriptor. The PPO
loss is then taken on those rollouts with the parameters predicted again, with gradients:
``policy params = mapping(descriptor)`` sits inside the loss (a functional forward pass,
``torch.func``), so the update trains the mapping itself, never a policy. An untrained
mapping is exactly the base policy (its output layer starts as the base's parameters), so
this starts where a plain PPO fine-tune of the base would, on every task at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from meta_rl.envs import Family, Task
from meta_rl.errors import ConfigError
from meta_rl.infra.checks import check_counts, check_reals
from meta_rl.infra.divergence import Divergence
from meta_rl.infra.files import load_optimizer, optimizer_tensors
from meta_rl.mapping.network import MappingNetwork
from meta_rl.mapping.policy import (
    PolicyOutput,
    PolicySpec,
    action_distribution,
    action_entropy,
    action_log_prob,
    sample_actions,
)
from meta_rl.objectives.advantages import gae
from meta_rl.objectives.phase import IterativePhase, OnIteration, PhaseContext, PhaseInfo
from meta_rl.objectives.task_envs import TaskEnvs


@dataclass(frozen=True, kw_only=True)
class RLConfig:
    """Settings of the ``rl`` objective (PPO through the mapping).

    Attributes:
        iterations: Rollout-and-update iterations.
        tasks_per_iteration: Training tasks in one rollout (one env each).
        n_steps: Env steps per task and iteration.
        epochs: Passes over a rollout.
        minibatches: Minibatches per pass; each holds every task's share of states.
        lr: Adam learning rate of the mapping.
        clip_range: PPO's ratio clip.
        ent_coef: Entropy bonus.
        vf_coef: Weight of the value loss.
        max_grad_norm: Gradient-norm clip.
        gamma: Discount (default: the family recipe's PPO setting).
        gae_lambda: GAE's lambda (default: the recipe's).
        eval_every: Iterations between validation scores (model selection).
        batched: Roll out on the family's batched env where it has one (one NumPy step for
            all tasks); ``False``: one Gymnasium env per task.
    """

    iterations: int = 250
    tasks_per_iteration: int = 16
    n_steps: int = 256
    epochs: int = 5
    minibatches: int = 4
    lr: float = 1e-4
    clip_range: float = 0.1
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    gamma: float | None = None
    gae_lambda: float | None = None
    eval_every: int = 5
    batched: bool = True

    def __post_init__(self) -> None:
        check_counts(
            self,
            "rl",
            ("iterations", "tasks_per_iteration", "n_steps", "epochs", "minibatches", "eval_every"),
        )
        if self.minibatches > self.n_steps:
            raise ConfigError("rl.minibatches must not exceed rl.n_steps")
        check_reals(self, "rl", ("lr", "clip_range", "max_grad_norm"), positive=True)
        check_reals(self, "rl", ("ent_coef", "vf_coef"), positive=False)
        if self.gamma is not None and not 0 < self.gamma <= 1:
            raise ConfigError(f"rl.gamma must be in (0, 1], got {self.gamma}")
        if self.gae_lambda is not None and not 0 <= self.gae_lambda <= 1:
            raise ConfigError(f"rl.gae_lambda must be in [0, 1], got {self.gae_lambda}")


@dataclass
class Rollout:
    """One iteration's experience, shaped ``(tasks, n_steps, ...)``."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episode_returns: list[float]


def collect(
    spec: PolicySpec,
    network: MappingNetwork,
    descriptors: torch.Tensor,
    envs: TaskEnvs,
    config: RLConfig,
    gamma: float,
    gae_lambda: float,
    generator: torch.Generator,
    *,
    seed: int,
) -> Rollout:
    """Act ``config.n_steps`` steps in ``envs`` (one per row of ``descriptors``) with the
    predicted policies, from a seeded reset, and compute GAE advantages. A time limit is
    bootstrapped with the value of the last observation, as SB3 does."""
    with torch.no_grad():
        params = network(descriptors)
    if not torch.isfinite(params).all():
        raise Divergence("rl objective: the mapping predicted non-finite parameters")
    n, t_max = envs.n, config.n_steps
    obs_buf = torch.zeros(n, t_max, spec.arch.obs_dim)
    act_buf: list[torch.Tensor] = []
    logp_buf = torch.zeros(n, t_max)
    value_buf = torch.zeros(n, t_max)
    reward_buf = torch.zeros(n, t_max)
    done_buf = torch.zeros(n, t_max)
    running = np.zeros(n)
    finished: list[float] = []

    def evaluate(rows: torch.Tensor, obs: np.ndarray) -> PolicyOutput:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(len(rows), 1, -1)
        with torch.no_grad():
            return spec.forward(rows, x)

    obs = envs.reset(seed)
    for t in range(t_max):
        out = evaluate(params, obs)
        action = sample_actions(spec, out, generator)
        obs_buf[:, t] = torch.as_tensor(obs, dtype=torch.float32)
        act_buf.append(action[:, 0])
        logp_buf[:, t] = action_log_prob(spec, action_distribution(spec, out), action)[:, 0]
        value_buf[:, t] = out.value[:, 0]
        obs, reward, terminated, truncated, final = envs.step(action[:, 0].numpy())
        running += reward
        cut = truncated & ~terminated
        if cut.any():  # bootstrap the cut-off tail with the value of its last observation
            rows = np.flatnonzero(cut)
            tail = evaluate(params[torch.as_tensor(rows)], final[rows]).value[:, 0]
            reward = reward.copy()
            reward[rows] += gamma * tail.numpy()
        reward_buf[:, t] = torch.as_tensor(reward, dtype=torch.float32)
        ended = terminated | truncated
        done_buf[:, t] = torch.as_tensor(ended, dtype=torch.float32)
        finished.extend(running[ended].tolist())
        running[ended] = 0.0
    last_value = evaluate(params, obs).value[:, 0]

    next_values = torch.cat([value_buf[:, 1:], last_value[:, None]], dim=1)
    advantages = gae(
        reward_buf, value_buf, next_values, 1.0 - done_buf, gamma=gamma, gae_lambda=gae_lambda
    )
    return Rollout(
        obs=obs_buf,
        actions=torch.stack(act_buf, dim=1),
        log_prob=logp_buf,
        advantages=advantages,
        returns=advantages + value_buf,
        episode_returns=finished,
    )


def ppo_loss(
    spec: PolicySpec,
    params: torch.Tensor,
    obs: torch.Tensor,
    actions: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    config: RLConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped loss for predicted parameters ``(B, P)`` on states ``(B, n, ...)``.

    Gradients flow into ``params`` and so into whatever predicted them.
    """
    out = spec.forward(params, obs)
    dist = action_distribution(spec, out)
    log_prob = action_log_prob(spec, dist, actions)
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = torch.exp(log_prob - old_log_prob)
    policy = -torch.min(
        ratio * adv, ratio.clamp(1 - config.clip_range, 1 + config.clip_range) * adv
    ).mean()
    value = ((out.value - returns) ** 2).mean()
    entropy = action_entropy(spec, dist).mean()
    loss = policy + config.vf_coef * value - config.ent_coef * entropy
    with torch.no_grad():
        approx_kl = ((ratio - 1) - (log_prob - old_log_prob)).mean()
    stats = {
        "policy_loss": float(policy.detach()),
        "value_loss": float(value.detach()),
        "entropy": float(entropy.detach()),
        "approx_kl": float(approx_kl),
    }
    return loss, stats


def train_rl(
    spec: PolicySpec,
    network: MappingNetwork,
    family: Family,
    tasks: Sequence[Task],
    descriptors: torch.Tensor,
    config: RLConfig,
    *,
    gamma: float,
    gae_lambda: float,
    seed: int,
    batched: bool | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    start_iteration: int = 0,
    on_iteration: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> int:
    """Train ``network`` in place with PPO through its predictions; returns env steps taken.

    Args:
        spec: Layout of the predicted policy.
        network: The mapping (usually starting as the base policy).
        family: The task family.
        tasks: Training tasks; ``descriptors`` holds their descriptors, row by row.
        config: PPO settings.
        gamma: Discount (``config.gamma`` overrides it).
        gae_lambda: GAE's lambda (``config.gae_lambda`` overrides it).
        seed: Seed of task draws, action sampling and env resets.
        batched: Overrides ``config.batched``: the family's batched env where it has one
            (one NumPy step for all tasks), or one Gymnasium env per task (the same
            algorithm, slower; the start states differ).
        optimizer: The mapping's optimizer (default: a fresh Adam at ``config.lr``).
        generator: Random source of task draws and actions (default: seeded by ``seed``).
        start_iteration: Iterations already done (a resumed run passes the saved
            optimizer and generator too, and goes on exactly where it stopped).
        on_iteration: Called after each iteration with (iteration, env steps of this call
            so far, statistics); the caller scores validation tasks, keeps the best state
            and saves what a resumed run needs there.

    Raises:
        Divergence: the prediction, the loss or a gradient became NaN or infinite; the
            network is left as it was before the offending update, and the exception's
            ``env_steps`` counts the steps taken.
    """
    gamma = config.gamma if config.gamma is not None else gamma
    gae_lambda = config.gae_lambda if config.gae_lambda is not None else gae_lambda
    batched = config.batched if batched is None else batched
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    if optimizer is None:
        optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    n_chosen = min(config.tasks_per_iteration, len(tasks))
    per_batch = math.ceil(config.n_steps / config.minibatches)
    env_steps = 0
    try:
        for iteration in range(start_iteration + 1, config.iterations + 1):
            chosen = torch.randperm(len(tasks), generator=generator)[:n_chosen]
            envs = TaskEnvs(family, [tasks[i] for i in chosen.tolist()], batched=batched)
            try:
                roll = collect(
                    spec,
                    network,
                    descriptors[chosen],
                    envs,
                    config,
                    gamma,
                    gae_lambda,
                    generator,
                    seed=seed * 100_003 + iteration,
                )
            finally:
                envs.close()
            env_steps += n_chosen * config.n_steps
            stats: dict[str, float] = {}
            for _ in range(config.epochs):
                order = torch.argsort(torch.rand(n_chosen, config.n_steps, generator=generator))
                for start in range(0, config.n_steps, per_batch):
                    idx = order[:, start : start + per_batch]

                    def take(x: torch.Tensor, idx: torch.Tensor = idx) -> torch.Tensor:
                        shape = idx.shape + (1,) * (x.dim() - 2)
                        return torch.gather(
                            x, 1, idx.reshape(shape).expand(*idx.shape, *x.shape[2:])
                        )

                    params = network(descriptors[chosen])
                    loss, stats = ppo_loss(
                        spec,
                        params,
                        take(roll.obs),
                        take(roll.actions),
                        take(roll.log_prob),
                        take(roll.advantages),
                        take(roll.returns),
                        config,
                    )
                    if not torch.isfinite(loss):
                        raise Divergence(
                            f"rl objective: the loss became {float(loss)} at iteration {iteration}"
                        )
                    optimizer.zero_grad()
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(
                        network.parameters(), config.max_grad_norm
                    )
                    if not torch.isfinite(norm):
                        raise Divergence(
                            f"rl objective: a gradient became {float(norm)} at iteration "
                            f"{iteration}"
                        )
                    optimizer.step()
            if roll.episode_returns:
                stats["episode_return"] = float(np.mean(roll.episode_returns))
            if on_iteration is not None:
                on_iteration(iteration, env_steps, stats)
    except Divergence as err:
        err.env_steps = env_steps  # every rollout so far, the failing one included
        raise
    return env_steps


class RLPhase(IterativePhase):
    """``rl``: PPO through the mapping on the split's training tasks, no experts."""

    info = PhaseInfo(
        name="rl",
        action_kinds=frozenset({"box", "discrete"}),
        needs_experts=False,
        clamps=False,
        draws_tasks=False,
        summary="PPO through the mapping, no experts",
    )

    def __init__(self, context: PhaseContext) -> None:
        super().__init__(context)
        config = context.config
        self.settings: RLConfig = config.rl
        self.optimizer = torch.optim.Adam(context.network.parameters(), lr=self.settings.lr)
        self.generator = torch.Generator().manual_seed(config.seed + 3)

    def iterate(self, start: int, on_iteration: OnIteration) -> None:
        context = self.context
        ppo = context.recipe.ppo
        train_rl(
            context.spec,
            context.network,
            context.family,
            context.tasks,
            context.descriptors,
            self.settings,
            gamma=float(ppo.get("gamma", 0.99)),
            gae_lambda=float(ppo.get("gae_lambda", 0.95)),
            seed=context.config.seed + 3,
            optimizer=self.optimizer,
            generator=self.generator,
            start_iteration=start,
            on_iteration=on_iteration,
        )

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            **optimizer_tensors(self.optimizer, "optimizer"),
            "rl_generator": self.generator.get_state(),
        }

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        load_optimizer(self.optimizer, tensors, "optimizer")
        self.generator.set_state(tensors["rl_generator"])
