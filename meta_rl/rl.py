"""The ``rl`` objective: PPO through the mapping network.

Each iteration draws training tasks, one environment per task, and acts in every
environment with the policy that the mapping predicts for that task's descriptor. The PPO
loss is then taken on those rollouts with the parameters predicted again, with gradients:
``policy params = mapping(descriptor)`` sits inside the loss (a functional forward pass,
``torch.func``), so the update trains the mapping itself, never a policy. An untrained
mapping is exactly the base policy (DESIGN's bias initialisation), so this starts where a
plain PPO fine-tune of the base would, on every task at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from meta_rl.checks import check_counts, check_reals
from meta_rl.divergence import Divergence
from meta_rl.envs import Family, Task
from meta_rl.envs.vector import FamilyVectorEnv, batched_families
from meta_rl.mapping import MappingNetwork
from meta_rl.policy_spec import PolicyOutput, PolicySpec


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
            raise ValueError("rl.minibatches must not exceed rl.n_steps")
        check_reals(self, "rl", ("lr", "clip_range", "max_grad_norm"), positive=True)
        check_reals(self, "rl", ("ent_coef", "vf_coef"), positive=False)
        if self.gamma is not None and not 0 < self.gamma <= 1:
            raise ValueError(f"rl.gamma must be in (0, 1], got {self.gamma}")
        if self.gae_lambda is not None and not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"rl.gae_lambda must be in [0, 1], got {self.gae_lambda}")


@dataclass
class Rollout:
    """One iteration's experience, shaped ``(tasks, n_steps, ...)``."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episode_returns: list[float]


def action_distribution(spec: PolicySpec, out: PolicyOutput) -> torch.distributions.Distribution:
    """The policy's action distribution: categorical over logits, or a diagonal Gaussian."""
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


def _entropy(spec: PolicySpec, dist: torch.distributions.Distribution) -> torch.Tensor:
    ent = dist.entropy()
    return ent if spec.arch.action_kind == "discrete" else ent.sum(-1)


class TaskEnvs:
    """The envs of one rollout, one task each: the family's batched env where it has one
    (one NumPy step for all), else one Gymnasium env per task. Finished episodes restart at
    once; the last observation of a truncated one is kept for bootstrapping."""

    def __init__(self, family: Family, tasks: Sequence[Task], *, batched: bool = True) -> None:
        self.n = len(tasks)
        self.vector: FamilyVectorEnv | None = None
        self.envs: list[gym.Env] = []
        if batched and family.name.lower() in batched_families():
            self.vector = FamilyVectorEnv(family, self.n, tasks, autoreset_mode="same_step")
            self.action_space = self.vector.single_action_space
        else:
            self.envs = [family.make(task=t) for t in tasks]
            # The widest action space holds every task's; each env clips to its own limits.
            self.action_space = self.envs[0].unwrapped.widest_spaces()[1]

    def reset(self, seed: int) -> np.ndarray:
        """Seeded start states. One env per task draws its seed from ``SeedSequence(seed)``,
        so that resets with consecutive seeds never share start states (``seed + i`` would:
        env ``i`` of one reset would meet env ``i - 1`` of the next)."""
        if self.vector is not None:
            return self.vector.reset(seed=seed)[0]
        seeds = np.random.SeedSequence(seed).generate_state(len(self.envs))
        return np.stack(
            [env.reset(seed=int(s))[0] for s, env in zip(seeds, self.envs, strict=True)]
        )

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Observations (new episodes' first where one ended), rewards, terminated,
        truncated, and each ended episode's last observation (NaN elsewhere)."""
        if isinstance(self.action_space, gym.spaces.Box):
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        if self.vector is not None:
            obs, reward, terminated, truncated, info = self.vector.step(actions)
            final = info.get("final_obs", np.full_like(obs, np.nan))
            return obs, reward, terminated, truncated, final
        out = [env.step(a) for env, a in zip(self.envs, actions, strict=True)]
        obs = np.stack([o[0] for o in out])
        reward = np.array([o[1] for o in out], dtype=np.float64)
        terminated = np.array([o[2] for o in out], dtype=bool)
        truncated = np.array([o[3] for o in out], dtype=bool)
        final = np.full_like(obs, np.nan)
        for i in np.flatnonzero(terminated | truncated):
            final[i] = obs[i]
            obs[i] = self.envs[i].reset()[0]
        return obs, reward, terminated, truncated, final

    def close(self) -> None:
        if self.vector is not None:
            self.vector.close()
        for env in self.envs:
            env.close()


def sample_actions(spec: PolicySpec, out: PolicyOutput, generator: torch.Generator) -> torch.Tensor:
    """A seeded draw from the policy: Gaussian for Box actions, categorical otherwise."""
    if spec.arch.action_kind == "discrete":
        probs = torch.softmax(out.mean, -1)
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        return flat.reshape(probs.shape[:-1])
    assert out.log_std is not None
    noise = torch.randn(out.mean.shape, generator=generator)
    return out.mean + out.log_std.exp() * noise


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

    advantages = torch.zeros(n, t_max)
    gae = torch.zeros(n)
    for t in reversed(range(t_max)):
        next_value = last_value if t == t_max - 1 else value_buf[:, t + 1]
        live = 1.0 - done_buf[:, t]
        delta = reward_buf[:, t] + gamma * next_value * live - value_buf[:, t]
        gae = delta + gamma * gae_lambda * live * gae
        advantages[:, t] = gae
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
    entropy = _entropy(spec, dist).mean()
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
