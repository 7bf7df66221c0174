"""The ``td3`` objective: an off-policy actor-critic through the mapping network (Box actions).

PPO through the mapping (:mod:`meta_rl.rl`) inherits PPO's weakness on tasks that need
long exploration: a heavy pendulum with a weak motor must be pumped up in several swings,
which a Gaussian around the base's action rarely finds, while SAC learns it in 20k steps.
This objective trains the mapping as TD3's actor. Every env of a rollout holds its own
training task and acts with the mapping's prediction for that task plus Gaussian noise;
the transitions go to one replay buffer; one twin critic ``Q(s, a, d)`` reads the
descriptor ``d`` beside the state and action, so it is shared by every task; the actor
loss ``-Q(s, mu_{f(d)}(s), d)`` flows through the predicted parameters into the mapping.

The predicted policy is still SB3's PPO ``MlpPolicy``: its action mean is TD3's
deterministic actor (SB3 clips it to the action space when it acts, so the critic sees the
clipped action and a mean beyond the bounds is pulled back by a penalty), and its
``log_std`` and value head stay the base's, ready for a PPO fine-tune. An untrained
mapping is the base policy, so the critic first learns alone (``warmup_iterations``) on
the base's noisy actions, and the actor moves only once the critic means something.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from meta_rl.checks import check_counts, check_reals
from meta_rl.divergence import Divergence
from meta_rl.envs import Family, Task
from meta_rl.io import load_optimizer, optimizer_tensors
from meta_rl.mapping import MappingNetwork
from meta_rl.policy_spec import PolicySpec
from meta_rl.rl import TaskEnvs


@dataclass(frozen=True, kw_only=True)
class TD3Config:
    """Settings of the ``td3`` objective.

    Attributes:
        tasks: Training tasks to draw from, from the same region and random stream as the
            split's training tasks (on the interpolation split the first ``n_train`` are
            the split's own); validation and test tasks are untouched (``None``: the
            split's ``n_train`` training tasks).
            TD3 trains no expert per task, so more tasks cost no env steps; with the 48 of
            Pendulum's split the predicted policies failed on validation tasks near the
            edges of the task space (docs/benchmarks/pendulum-objectives).
        iterations: Rollout-and-update iterations.
        tasks_per_iteration: Training tasks in one rollout (one env each).
        n_steps: Env steps per task and iteration.
        warmup_iterations: First iterations in which only the critic learns.
        updates_per_step: Gradient steps per env step collected (the update-to-data
            ratio).
        batch_tasks: Tasks in one gradient step's batch.
        batch_states: Transitions of each of those tasks.
        buffer_per_task: Transitions kept per task (the oldest go first).
        actor_lr: Adam learning rate of the mapping.
        critic_lr: Adam learning rate of the critic.
        critic_hidden: Hidden layer sizes of each of the twin critics.
        gamma: Discount (its own, not the recipe's PPO setting: rl-zoo3's TD3 value for
            Pendulum, 0.98; a family with longer horizons wants more).
        tau: Polyak factor of the target networks.
        action_noise: Std of the exploration noise, as a fraction of each task's action
            half-range.
        target_noise: Std of the target policy's smoothing noise (same units).
        noise_clip: Clip of that noise (same units).
        policy_delay: Critic updates per actor update.
        bound_coef: Weight of the penalty on an action mean beyond the task's bounds.
        eval_every: Iterations between validation scores (model selection).
        batched: Roll out on the family's batched env where it has one.
    """

    tasks: int | None = 256
    iterations: int = 40
    tasks_per_iteration: int = 16
    n_steps: int = 200
    warmup_iterations: int = 5
    updates_per_step: float = 0.5
    batch_tasks: int = 16
    batch_states: int = 16
    buffer_per_task: int = 50_000
    actor_lr: float = 1e-4
    critic_lr: float = 1e-3
    critic_hidden: tuple[int, ...] = (256, 256)
    gamma: float = 0.98
    tau: float = 0.005
    action_noise: float = 0.1
    target_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    bound_coef: float = 1.0
    eval_every: int = 5
    batched: bool = True

    def __post_init__(self) -> None:
        check_counts(
            self,
            "td3",
            (
                "iterations",
                "tasks_per_iteration",
                "n_steps",
                "batch_tasks",
                "batch_states",
                "buffer_per_task",
                "policy_delay",
                "eval_every",
            ),
        )
        check_counts(self, "td3", ("warmup_iterations",), minimum=0)
        if self.tasks is not None:
            check_counts(self, "td3", ("tasks",), minimum=2)
        check_reals(
            self, "td3", ("updates_per_step", "actor_lr", "critic_lr", "tau"), positive=True
        )
        if self.tau > 1:
            raise ValueError("td3.tau must be at most 1")
        check_reals(
            self,
            "td3",
            ("action_noise", "target_noise", "noise_clip", "bound_coef"),
            positive=False,
        )
        if not 0 < self.gamma <= 1:
            raise ValueError(f"td3.gamma must be in (0, 1], got {self.gamma}")
        object.__setattr__(self, "critic_hidden", tuple(int(h) for h in self.critic_hidden))
        if not self.critic_hidden or min(self.critic_hidden) < 1:
            raise ValueError("td3.critic_hidden must be positive layer sizes")


class TwinCritic(nn.Module):
    """Two ``Q(s, a, d)`` networks (TD3's clipped double Q), one for every task."""

    def __init__(self, obs_dim: int, action_dim: int, descriptor_dim: int, hidden: Sequence[int]):
        super().__init__()

        def q() -> nn.Sequential:
            layers: list[nn.Module] = []
            width = obs_dim + action_dim + descriptor_dim
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            return nn.Sequential(*layers, nn.Linear(width, 1))

        self.q1, self.q2 = q(), q()

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, descriptor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action, descriptor], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class ReplayBuffer:
    """Transitions kept per task (a ring of ``capacity`` each), so that a batch holds a few
    tasks with many states each: the mapping then predicts a few parameter sets per
    gradient step, not one per state (16 times faster at 16 x 16 than at 256 x 1)."""

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")

    def __init__(self, n_tasks: int, capacity: int, obs_dim: int, action_dim: int) -> None:
        self.capacity = capacity
        self.size = torch.zeros(n_tasks, dtype=torch.long)
        self.next = torch.zeros(n_tasks, dtype=torch.long)
        shapes = {
            "obs": (obs_dim,),
            "actions": (action_dim,),
            "rewards": (),
            "next_obs": (obs_dim,),
            "terminated": (),
        }
        for name in self.FIELDS:
            setattr(self, name, torch.zeros(n_tasks, 0, *shapes[name]))

    def reserve(self, n: int) -> None:
        """Room for ``n`` transitions per task; storage grows by doubling, up to
        ``capacity``, so a short run does not hold a long one's memory."""
        held = self.obs.shape[1]
        if n <= held:
            return
        grown = min(self.capacity, max(n, 2 * held, 1024))
        for name in self.FIELDS:
            old = getattr(self, name)
            new = torch.zeros(old.shape[0], grown, *old.shape[2:])
            new[:, :held] = old
            setattr(self, name, new)

    def add(self, tasks: torch.Tensor, **rows: torch.Tensor) -> None:
        """One transition for each of ``tasks`` (distinct task indices)."""
        slot = self.next[tasks]
        self.reserve(int(slot.max()) + 1)
        for name, value in rows.items():
            getattr(self, name)[tasks, slot] = value.to(getattr(self, name).dtype)
        self.next[tasks] = (slot + 1) % self.capacity
        self.size[tasks] = torch.clamp(self.size[tasks] + 1, max=self.capacity)

    def sample(
        self, n_tasks: int, per_task: int, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """``per_task`` transitions of each of ``n_tasks`` tasks that have some, shaped
        ``(n_tasks, per_task, ...)``; ``"task"`` holds the task indices, ``(n_tasks,)``."""
        filled = torch.nonzero(self.size).squeeze(1)
        tasks = filled[torch.randperm(len(filled), generator=generator)[:n_tasks]]
        pick = torch.rand(len(tasks), per_task, generator=generator)
        index = (pick * self.size[tasks, None]).long()
        rows = tasks[:, None].expand_as(index)
        batch = {name: getattr(self, name)[rows, index] for name in self.FIELDS}
        batch["task"] = tasks
        return batch


def check_box_actions(family: Family) -> None:
    """Raise ``ValueError`` unless ``family`` acts with continuous (Box) actions."""
    env = family.make()
    box = isinstance(env.action_space, gym.spaces.Box)
    env.close()
    if not box:
        raise ValueError(
            f"the td3 objective needs continuous (Box) actions; {family.name}'s are "
            "discrete: use rl or distill"
        )


def task_bounds(family: Family, tasks: Sequence[Task]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each task's action bounds, ``(tasks, action_dim)`` twice (they follow the task in
    some families: Pendulum's ``max_torque``)."""
    lows, highs = [], []
    for task in tasks:
        env = family.make(task=task)
        lows.append(np.asarray(env.action_space.low, dtype=np.float32))
        highs.append(np.asarray(env.action_space.high, dtype=np.float32))
        env.close()
    return torch.as_tensor(np.stack(lows)), torch.as_tensor(np.stack(highs))


def _mean_actions(
    spec: PolicySpec, network: MappingNetwork, descriptors: torch.Tensor, obs: torch.Tensor
) -> torch.Tensor:
    """The action means of the policies ``network`` predicts for ``descriptors`` (``(B, D)``)
    on states ``(B, N, obs_dim)``; only the actor's parameters are predicted."""
    return spec.action_mean(network(descriptors, spec.actor_rows), obs)


class TD3Learner:
    """TD3 with the mapping as its actor, across training tasks.

    Args:
        spec: Layout of the predicted policy (Box actions).
        network: The mapping, trained in place (usually starting as the base policy).
        family: The task family.
        tasks: Training tasks; ``descriptors`` holds their descriptors, row by row.
        config: TD3 settings.
        seed: Seed of the critic's initialisation, task draws, noise and env resets.

    Everything a resumed run needs beside the mapping (critic, targets, optimizers, replay
    buffer, random state) goes through :meth:`state_tensors` and :meth:`load_state`.
    """

    def __init__(
        self,
        spec: PolicySpec,
        network: MappingNetwork,
        family: Family,
        tasks: Sequence[Task],
        descriptors: torch.Tensor,
        config: TD3Config,
        *,
        seed: int,
    ) -> None:
        check_box_actions(family)
        self.spec, self.network, self.family = spec, network, family
        self.tasks, self.descriptors, self.config = list(tasks), descriptors, config
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # seeded, and torch's global state kept
            torch.manual_seed(seed)
            self.critic = TwinCritic(
                spec.arch.obs_dim, spec.arch.action_dim, descriptors.shape[1], config.critic_hidden
            )
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_target = copy.deepcopy(network).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(network.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.low, self.high = task_bounds(family, self.tasks)
        self.half = (self.high - self.low) / 2
        self.buffer = ReplayBuffer(
            len(self.tasks), config.buffer_per_task, spec.arch.obs_dim, spec.arch.action_dim
        )
        self.updates = 0

    # ------------------------------------------------------------------ state
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The learner's state beside the mapping, as named tensors."""
        tensors: dict[str, torch.Tensor] = {}
        for name in ("critic", "critic_target", "actor_target"):
            module: nn.Module = getattr(self, name)
            tensors.update({f"td3.{name}.{k}": v for k, v in module.state_dict().items()})
        tensors.update(optimizer_tensors(self.actor_opt, "td3.actor_opt"))
        tensors.update(optimizer_tensors(self.critic_opt, "td3.critic_opt"))
        filled = int(self.buffer.size.max())  # the rest of each ring is still zeros
        for name in ReplayBuffer.FIELDS:
            tensors[f"td3.buffer.{name}"] = getattr(self.buffer, name)[:, :filled]
        tensors["td3.buffer.size"] = self.buffer.size
        tensors["td3.buffer.next"] = self.buffer.next
        tensors["td3.generator"] = self.generator.get_state()
        tensors["td3.updates"] = torch.tensor(self.updates)
        return tensors

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` saved."""
        for name in ("critic", "critic_target", "actor_target"):
            prefix = f"td3.{name}."
            getattr(self, name).load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        load_optimizer(self.actor_opt, tensors, "td3.actor_opt")
        load_optimizer(self.critic_opt, tensors, "td3.critic_opt")
        filled = tensors["td3.buffer.obs"].shape[1]
        self.buffer.reserve(filled)
        for name in ReplayBuffer.FIELDS:
            getattr(self.buffer, name)[:, :filled] = tensors[f"td3.buffer.{name}"]
        self.buffer.size.copy_(tensors["td3.buffer.size"])
        self.buffer.next.copy_(tensors["td3.buffer.next"])
        self.generator.set_state(tensors["td3.generator"])
        self.updates = int(tensors["td3.updates"])

    # --------------------------------------------------------------- training
    def train(
        self,
        *,
        start_iteration: int = 0,
        on_iteration: Callable[[int, int, dict[str, Any]], None] | None = None,
    ) -> int:
        """Iterations ``start_iteration + 1`` to ``config.iterations``; returns the env
        steps they took. ``on_iteration`` gets (iteration, env steps of this call so far,
        statistics) after each; the caller scores validation tasks and saves state there.

        Raises:
            Divergence: a prediction, a loss or a gradient became NaN or infinite; the
                exception's ``env_steps`` counts the steps taken.
        """
        env_steps = 0
        threads = torch.get_num_threads()
        # A 256-wide critic on batches of 256 runs twice as fast on two threads as on one
        # (the command line sets one for its small policies and worker processes).
        torch.set_num_threads(max(threads, min(2, os.cpu_count() or 1)))
        try:
            for iteration in range(start_iteration + 1, self.config.iterations + 1):
                returns = self._collect(iteration)
                env_steps += self._n_chosen * self.config.n_steps
                stats = self._update(iteration)
                if returns:
                    stats["episode_return"] = float(np.mean(returns))
                if on_iteration is not None:
                    on_iteration(iteration, env_steps, stats)
        except Divergence as err:
            err.env_steps = env_steps
            raise
        finally:
            torch.set_num_threads(threads)
        return env_steps

    @property
    def _n_chosen(self) -> int:
        return min(self.config.tasks_per_iteration, len(self.tasks))

    def _collect(self, iteration: int) -> list[float]:
        """One rollout of the predicted policies plus exploration noise, into the buffer;
        returns the (noisy) returns of the episodes that ended."""
        config, spec = self.config, self.spec
        chosen = torch.randperm(len(self.tasks), generator=self.generator)[: self._n_chosen]
        with torch.no_grad():
            actor = self.network(self.descriptors[chosen], spec.actor_rows)
        if not torch.isfinite(actor).all():
            raise Divergence("td3 objective: the mapping predicted non-finite parameters")
        low, high, half = self.low[chosen], self.high[chosen], self.half[chosen]
        envs = TaskEnvs(
            self.family, [self.tasks[i] for i in chosen.tolist()], batched=config.batched
        )
        returns: list[float] = []
        try:
            obs = envs.reset(self.seed * 100_003 + iteration)
            running = np.zeros(len(chosen))
            for _ in range(config.n_steps):
                x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
                with torch.no_grad():
                    mean = spec.action_mean(actor, x.unsqueeze(1))[:, 0]
                noise = torch.randn(mean.shape, generator=self.generator)
                action = torch.clamp(mean + config.action_noise * half * noise, low, high)
                obs, reward, terminated, truncated, final = envs.step(action.numpy())
                ended = terminated | truncated
                after = np.where(ended[:, None], final, obs)  # not the next episode's start
                self.buffer.add(
                    chosen,
                    obs=x,
                    actions=action,
                    rewards=torch.as_tensor(reward),
                    next_obs=torch.as_tensor(np.asarray(after, dtype=np.float32)),
                    terminated=torch.as_tensor(terminated),
                )
                running += reward
                returns.extend(running[ended].tolist())
                running[ended] = 0.0
        finally:
            envs.close()
        return returns

    def _update(self, iteration: int) -> dict[str, float]:
        """TD3's gradient steps for one rollout: the critics every step, the actor (the
        mapping) and the targets every ``policy_delay`` steps, the actor not before the
        warm-up is over."""
        config, spec = self.config, self.spec
        stats: dict[str, float] = {}
        n_updates = round(config.updates_per_step * self._n_chosen * config.n_steps)
        for _ in range(n_updates):
            batch = self.buffer.sample(config.batch_tasks, config.batch_states, self.generator)
            task = batch["task"]
            desc = self.descriptors[task]
            states_desc = desc[:, None].expand(-1, batch["obs"].shape[1], -1)
            low, high, half = self.low[task, None], self.high[task, None], self.half[task, None]
            with torch.no_grad():
                target_mean = _mean_actions(spec, self.actor_target, desc, batch["next_obs"])
                smooth = torch.randn(target_mean.shape, generator=self.generator)
                smooth = (config.target_noise * smooth).clamp(-config.noise_clip, config.noise_clip)
                next_action = torch.clamp(target_mean + smooth * half, low, high)
                q1_next, q2_next = self.critic_target(batch["next_obs"], next_action, states_desc)
                live = 1 - batch["terminated"]
                target = batch["rewards"] + config.gamma * live * torch.min(q1_next, q2_next)
            q1, q2 = self.critic(batch["obs"], batch["actions"], states_desc)
            critic_loss = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
            _check(critic_loss, "critic loss", iteration)
            self.critic_opt.zero_grad()
            critic_loss.backward()
            self.critic_opt.step()
            self.updates += 1
            stats["critic_loss"] = float(critic_loss.detach())
            if self.updates % config.policy_delay:
                continue
            if iteration > config.warmup_iterations:
                mean = _mean_actions(spec, self.network, desc, batch["obs"])
                inside = torch.maximum(torch.minimum(mean, high), low)
                q = self.critic.q1(torch.cat([batch["obs"], inside, states_desc], -1))
                beyond = ((mean - inside) / half) ** 2  # SB3 would clip it: pull it back in
                actor_loss = -q.mean() + config.bound_coef * beyond.sum(-1).mean()
                _check(actor_loss, "actor loss", iteration)
                self.actor_opt.zero_grad()
                actor_loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(self.network.parameters(), 10.0)
                _check(norm, "actor gradient", iteration)
                self.actor_opt.step()
                _polyak(self.actor_target, self.network, config.tau)
                stats["q"] = float(q.detach().mean())
            _polyak(self.critic_target, self.critic, config.tau)
        return stats


def _polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.lerp_(s, tau)


def _check(value: torch.Tensor, what: str, iteration: int) -> None:
    if not torch.isfinite(value):
        raise Divergence(
            f"td3 objective: the {what} became {float(value)} at iteration {iteration}"
        )
