"""What the off-policy objectives through the mapping share (``td3``, ``sac``, ``sacd``).

Every env of a rollout holds its own training task and acts with the mapping's
prediction for that task (plus the objective's exploration); the transitions go to one
replay buffer, kept per task; one twin critic reads the descriptor beside the state, so it
is shared by every task; the actor loss flows through the predicted parameters into the
mapping. An untrained mapping is the base policy, so the critic first learns alone
(``warmup_iterations``) on the base's own actions, and the actor moves only once the
critic means something.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from meta_rl.envs import Family, Task, get_family
from meta_rl.errors import ConfigError, FamilyError
from meta_rl.infra.checks import check_counts, check_reals
from meta_rl.infra.divergence import Divergence
from meta_rl.infra.files import load_optimizer, optimizer_tensors
from meta_rl.mapping.critic import TaskCritic
from meta_rl.mapping.network import MappingNetwork
from meta_rl.mapping.policy import PolicySpec
from meta_rl.objectives.phase import IterativePhase, OnIteration, PhaseContext
from meta_rl.objectives.task_envs import TaskEnvs

if TYPE_CHECKING:
    from meta_rl.training.config import TrainConfig


@dataclass(frozen=True, kw_only=True)
class OffPolicyConfig:
    """Settings every off-policy objective has (each objective's config documents them and
    sets its own defaults).

    Attributes:
        tasks: Training tasks to draw from, from the same region and random stream as the
            split's training tasks (on the interpolation split the first ``n_train`` are
            the split's own); validation and test tasks are untouched (``None``: the
            split's ``n_train`` training tasks). No expert is trained per task, so more
            tasks cost no env steps.
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
        gamma: Discount (the objective's own, not the recipe's PPO setting).
        tau: Polyak factor of the target networks.
        average_tau: Polyak factor of a running average of the mapping's weights, moved
            after every actor step; validation scores the average and the checkpoint keeps
            it, while the rollouts and gradient steps use the mapping's own weights (0:
            no average, the mapping's own weights are scored and kept).
        hard_share: Share of each rollout's tasks and of each batch's tasks drawn from the
            quarter of the tasks rolled out so far whose last rollout earned the least
            reward per step (at least one task when above 0; the rest are drawn uniformly,
            as all are at 0, and tasks not rolled out yet only uniformly). The ranking is by
            raw reward, so it favours tasks whose reward is low by nature (a heavy pendulum
            with a weak motor, a fast target) as much as tasks the mapping serves badly.
        eval_every: Iterations between validation scores (model selection).
        batched: Roll out on the family's batched env where it has one.
    """

    NAME: ClassVar[str] = "off-policy"

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
    average_tau: float = 0.0
    hard_share: float = 0.0
    eval_every: int = 5
    batched: bool = True

    def __post_init__(self) -> None:
        name = self.NAME
        check_counts(
            self,
            name,
            (
                "iterations",
                "tasks_per_iteration",
                "n_steps",
                "batch_tasks",
                "batch_states",
                "buffer_per_task",
                "eval_every",
            ),
        )
        check_counts(self, name, ("warmup_iterations",), minimum=0)
        if self.tasks is not None:
            check_counts(self, name, ("tasks",), minimum=2)
        check_reals(self, name, ("updates_per_step", "actor_lr", "critic_lr", "tau"), positive=True)
        check_reals(self, name, ("average_tau",), positive=False)
        check_reals(self, name, ("hard_share",), positive=False)
        for factor in ("tau", "average_tau", "hard_share"):
            if getattr(self, factor) > 1:
                raise ConfigError(f"{name}.{factor} must be at most 1")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"{name}.gamma must be in (0, 1], got {self.gamma}")
        object.__setattr__(self, "critic_hidden", tuple(int(h) for h in self.critic_hidden))
        if not self.critic_hidden or min(self.critic_hidden) < 1:
            raise ConfigError(f"{name}.critic_hidden must be positive layer sizes")


def mlp(width: int, hidden: Sequence[int], out: int) -> nn.Sequential:
    """A ReLU network ``width -> hidden... -> out``."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, out))


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

    def filled(self) -> torch.Tensor:
        """Indices of the tasks that have transitions."""
        return torch.nonzero(self.size).squeeze(1)

    def sample(
        self,
        n_tasks: int,
        per_task: int,
        generator: torch.Generator,
        tasks: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``per_task`` transitions of each of ``n_tasks`` tasks that have some (or of the
        given ``tasks``, which must have some), shaped ``(n_tasks, per_task, ...)``;
        ``"task"`` holds the task indices, ``(n_tasks,)``."""
        if tasks is None:
            filled = self.filled()
            tasks = filled[torch.randperm(len(filled), generator=generator)[:n_tasks]]
        pick = torch.rand(len(tasks), per_task, generator=generator)
        index = (pick * self.size[tasks, None]).long()
        rows = tasks[:, None].expand_as(index)
        batch = {name: getattr(self, name)[rows, index] for name in self.FIELDS}
        batch["task"] = tasks
        return batch


class OffPolicyLearner:
    """An off-policy actor-critic with the mapping as its actor, across training tasks.

    Args:
        spec: Layout of the predicted policy.
        network: The mapping, trained in place (usually starting as the base policy).
        family: The task family.
        tasks: Training tasks; ``descriptors`` holds their descriptors, row by row.
        config: The objective's settings.
        seed: Seed of the critic's initialisation, task draws, exploration and env resets.

    A subclass names its objective and the action kind it acts with (``objective``,
    ``action_kind``), builds its critic (:meth:`_make_critic`) and anything else it holds
    (:meth:`_setup`), says how the
    predicted policies explore (:meth:`_explore`) and makes the gradient steps
    (:meth:`_update`). Everything a
    resumed run needs beside the mapping (the modules named in ``_saved_modules``, the
    optimizers of :meth:`_optimizers`, the replay buffer, the random state) goes through
    :meth:`state_tensors` and :meth:`load_state`, under the objective's name.
    """

    objective: ClassVar[str]
    action_kind: ClassVar[str]  # "box" or "discrete", as PolicyArch.action_kind
    instead: ClassVar[str]  # the off-policy objective for the other kind

    _saved_modules: ClassVar[tuple[str, ...]] = ("critic", "critic_target")

    def __init__(
        self,
        spec: PolicySpec,
        network: MappingNetwork,
        family: Family,
        tasks: Sequence[Task],
        descriptors: torch.Tensor,
        config: OffPolicyConfig,
        *,
        seed: int,
    ) -> None:
        self.check_family(family)
        self.spec, self.network, self.family = spec, network, family
        self.tasks, self.descriptors, self.config = list(tasks), descriptors, config
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # seeded, and torch's global state kept
            torch.manual_seed(seed)
            self.critic = self._make_critic(descriptors.shape[1])
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(network.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.buffer = ReplayBuffer(
            len(self.tasks), config.buffer_per_task, spec.arch.obs_dim, self._action_width
        )
        self.updates = 0
        # Reward per step of each task's last rollout (NaN: not rolled out yet), which
        # ranks the tasks for config.hard_share.
        self.last_reward = torch.full((len(self.tasks),), float("nan"))
        # The running average of the mapping's weights (config.average_tau), if any.
        self.average = copy.deepcopy(network).requires_grad_(False) if config.average_tau else None
        self._setup()

    @classmethod
    def check_family(cls, family: Family) -> None:
        """Raise ``ValueError`` unless ``family`` acts with the objective's action kind."""
        env = family.make()
        space = env.action_space
        env.close()
        kind = "box" if isinstance(space, gym.spaces.Box) else "discrete"
        if kind != cls.action_kind:
            words = {"box": "continuous (Box)", "discrete": "discrete"}
            raise FamilyError(
                f"the {cls.objective} objective needs {words[cls.action_kind]} actions; "
                f"{family.name}'s are {words[kind]}: use {cls.instead}, rl or distill"
            )

    # ------------------------------------------------------------ subclasses
    def _setup(self) -> None:
        """The subclass's own state, once the shared state is built."""

    @property
    def _rollout_rows(self) -> torch.Tensor:
        """The rows of the flat policy vector :meth:`_explore` acts with."""
        return self.spec.actor_rows

    @property
    def _action_width(self) -> int:
        """Numbers per action in the replay buffer."""
        return self.spec.arch.action_dim

    def _make_critic(self, descriptor_dim: int) -> nn.Module:
        raise NotImplementedError

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    def _explore(
        self, actor: torch.Tensor, obs: torch.Tensor, chosen: torch.Tensor
    ) -> tuple[torch.Tensor, np.ndarray]:
        """The actions of the rollout's policies (``actor``: their parameters at
        :attr:`_rollout_rows`, one row per env; tasks ``chosen``) on ``obs``: as the buffer
        keeps them, and as the envs take them."""
        raise NotImplementedError

    def _target(
        self, batch: dict[str, torch.Tensor], desc: torch.Tensor, states_desc: torch.Tensor
    ) -> torch.Tensor:
        """The critics' regression target for a replay batch (see :meth:`_batch`)."""
        raise NotImplementedError

    def _update(self, iteration: int) -> dict[str, float]:
        """The gradient steps that follow one rollout; returns statistics."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    @property
    def _modules(self) -> tuple[str, ...]:
        return self._saved_modules + (("average",) if self.average is not None else ())

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The learner's state beside the mapping, as named tensors.

        With a running average, a caller saves the state from ``on_iteration`` (see
        :meth:`train`), where the mapping holds the average and ``average`` its own
        weights; :meth:`load_state` swaps them back."""
        tensors: dict[str, torch.Tensor] = {}
        for name in self._modules:
            module: nn.Module = getattr(self, name)
            tensors.update(
                {f"{self.objective}.{name}.{k}": v for k, v in module.state_dict().items()}
            )
        for name, optimizer in self._optimizers().items():
            tensors.update(optimizer_tensors(optimizer, f"{self.objective}.{name}"))
        filled = int(self.buffer.size.max())  # the rest of each ring is still zeros
        for name in ReplayBuffer.FIELDS:
            tensors[f"{self.objective}.buffer.{name}"] = getattr(self.buffer, name)[:, :filled]
        tensors[f"{self.objective}.buffer.size"] = self.buffer.size
        tensors[f"{self.objective}.buffer.next"] = self.buffer.next
        tensors[f"{self.objective}.generator"] = self.generator.get_state()
        tensors[f"{self.objective}.updates"] = torch.tensor(self.updates)
        tensors[f"{self.objective}.last_reward"] = self.last_reward
        return tensors

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` saved (the mapping restored beside it)."""
        for name in self._modules:
            prefix = f"{self.objective}.{name}."
            getattr(self, name).load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        for name, optimizer in self._optimizers().items():
            load_optimizer(optimizer, tensors, f"{self.objective}.{name}")
        filled = tensors[f"{self.objective}.buffer.obs"].shape[1]
        self.buffer.reserve(filled)
        for name in ReplayBuffer.FIELDS:
            getattr(self.buffer, name)[:, :filled] = tensors[f"{self.objective}.buffer.{name}"]
        self.buffer.size.copy_(tensors[f"{self.objective}.buffer.size"])
        self.buffer.next.copy_(tensors[f"{self.objective}.buffer.next"])
        self.generator.set_state(tensors[f"{self.objective}.generator"])
        self.updates = int(tensors[f"{self.objective}.updates"])
        last = tensors.get(f"{self.objective}.last_reward")  # absent from older runs
        self.last_reward = last.clone() if last is not None else self.last_reward.fill_(np.nan)
        self._swap_average()  # saved from on_iteration: the mapping held the average

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
        With ``config.average_tau``, the mapping holds the running average of its weights
        while ``on_iteration`` runs, and its own weights again afterwards.

        Raises:
            Divergence: a prediction, a loss or a gradient became NaN or infinite; the
                exception's ``env_steps`` counts the steps taken.
        """
        env_steps = 0
        # On the caller's torch threads (the trainer's one). A second thread made an idle
        # 2-core machine's gradient steps 1.4 times as fast, and made them a hundred times
        # slower while another process held the other core (`make bench`, speed docs).
        try:
            for iteration in range(start_iteration + 1, self.config.iterations + 1):
                returns = self._collect(iteration)
                env_steps += self._n_chosen * self.config.n_steps
                stats = self._update(iteration)
                if returns:
                    stats["episode_return"] = float(np.mean(returns))
                if on_iteration is not None:
                    self._swap_average()
                    try:
                        on_iteration(iteration, env_steps, stats)
                    finally:
                        self._swap_average()
        except Divergence as err:
            err.env_steps = env_steps
            raise
        return env_steps

    @property
    def _n_chosen(self) -> int:
        return min(self.config.tasks_per_iteration, len(self.tasks))

    def _collect(self, iteration: int) -> list[float]:
        """One rollout of the predicted policies (exploring), into the buffer; returns the
        returns of the episodes that ended."""
        config = self.config
        chosen = self._draw(torch.arange(len(self.tasks)), self._n_chosen)
        with torch.no_grad():
            actor = self.network(self.descriptors[chosen], self._rollout_rows)
        if not torch.isfinite(actor).all():
            raise Divergence(
                f"{self.objective} objective: the mapping predicted non-finite parameters"
            )
        envs = TaskEnvs(
            self.family, [self.tasks[i] for i in chosen.tolist()], batched=config.batched
        )
        returns: list[float] = []
        try:
            obs = envs.reset(self.seed * 100_003 + iteration)
            running = np.zeros(len(chosen))
            earned = np.zeros(len(chosen))
            for _ in range(config.n_steps):
                x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
                with torch.no_grad():
                    kept, taken = self._explore(actor, x, chosen)
                obs, reward, terminated, truncated, final = envs.step(taken)
                ended = terminated | truncated
                after = np.where(ended[:, None], final, obs)  # not the next episode's start
                self.buffer.add(
                    chosen,
                    obs=x,
                    actions=kept,
                    rewards=torch.as_tensor(reward),
                    next_obs=torch.as_tensor(np.asarray(after, dtype=np.float32)),
                    terminated=torch.as_tensor(terminated),
                )
                running += reward
                earned += reward
                returns.extend(running[ended].tolist())
                running[ended] = 0.0
        finally:
            envs.close()
        self.last_reward[chosen] = torch.as_tensor(earned / config.n_steps, dtype=torch.float32)
        return returns

    def _draw(self, candidates: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` distinct tasks of ``candidates`` (all of them if fewer): with
        ``config.hard_share``, that share from the hardest quarter of the candidates rolled
        out so far, the rest uniformly from the others."""
        share = self.config.hard_share
        known = candidates[~torch.isnan(self.last_reward[candidates])]
        n_hard = min(max(1, int(share * n + 0.5)) if share > 0 else 0, len(known) // 4)
        if n_hard == 0:  # without hard_share, the uniform draw it always was
            return candidates[torch.randperm(len(candidates), generator=self.generator)[:n]]
        hardest = known[torch.argsort(self.last_reward[known])[: len(known) // 4]]
        hard = hardest[torch.randperm(len(hardest), generator=self.generator)[:n_hard]]
        rest = candidates[~torch.isin(candidates, hard)]
        rest = rest[torch.randperm(len(rest), generator=self.generator)[: n - n_hard]]
        return torch.cat([hard, rest])

    def _batch(self) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """A replay batch, its tasks' descriptors ``(T, D)``, and those repeated for each
        state, ``(T, N, D)``."""
        config = self.config
        tasks = self._draw(self.buffer.filled(), config.batch_tasks) if config.hard_share else None
        batch = self.buffer.sample(
            config.batch_tasks, config.batch_states, self.generator, tasks=tasks
        )
        desc = self.descriptors[batch["task"]]
        return batch, desc, desc[:, None].expand(-1, batch["obs"].shape[1], -1)

    def _check(self, value: torch.Tensor, what: str, iteration: int) -> None:
        if not torch.isfinite(value):
            raise Divergence(
                f"{self.objective} objective: the {what} became {float(value)} at iteration "
                f"{iteration}"
            )

    def _step_actor(self, loss: torch.Tensor, iteration: int) -> None:
        """One Adam step of the mapping on ``loss``, gradients clipped to norm 10."""
        self._check(loss, "actor loss", iteration)
        self.actor_opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.network.parameters(), 10.0)
        self._check(norm, "actor gradient", iteration)
        self.actor_opt.step()
        if self.average is not None:
            polyak(self.average, self.network, self.config.average_tau)

    def _swap_average(self) -> None:
        """Exchange the mapping's weights with their running average (if one is kept)."""
        if self.average is None:
            return
        with torch.no_grad():
            for own, mean in zip(self.network.parameters(), self.average.parameters(), strict=True):
                held = own.clone()
                own.copy_(mean)
                mean.copy_(held)

    def _step_critic(self, loss: torch.Tensor, iteration: int) -> None:
        self._check(loss, "critic loss", iteration)
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()
        self.updates += 1


class TunedTemperature(OffPolicyLearner):
    """A learner with SAC's entropy temperature ``alpha``, tuned by Adam on ``log alpha``
    (``sac``, ``sacd``): its config has ``init_alpha`` and ``alpha_lr``, and the
    temperature and its optimizer are saved with the rest of the learner's state."""

    def _setup(self) -> None:
        config: Any = self.config
        self.log_alpha = torch.tensor(math.log(config.init_alpha), requires_grad=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super()._optimizers(), "alpha_opt": self.alpha_opt}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        key = f"{self.objective}.log_alpha"
        return {**super().state_tensors(), key: self.log_alpha.detach().clone()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state(tensors)
        with torch.no_grad():
            self.log_alpha.copy_(tensors[f"{self.objective}.log_alpha"])

    def _step_temperature(self, entropy: torch.Tensor, goal: float, iteration: int) -> None:
        """One Adam step of ``log alpha`` moving the policies' entropy towards ``goal``."""
        alpha_loss = self.log_alpha * (entropy - goal)
        self._check(alpha_loss, "temperature loss", iteration)
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()


def polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Move ``target``'s parameters a fraction ``tau`` towards ``source``'s."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.lerp_(s, tau)


def off_policy_tasks(config: TrainConfig, phase: str) -> list[Task]:
    """The training tasks an off-policy phase (``td3``, ``sac``, ``sacd``) of ``config``
    learns from.

    It trains no expert per task, so it may draw more tasks for free (``settings.tasks``):
    the split's own training stream, longer; the validation and test tasks do not change.
    ``None``: the split's training tasks.
    """
    settings: OffPolicyConfig = getattr(config, phase)
    n_train = config.resolved_recipe().n_train if settings.tasks is None else settings.tasks
    space = get_family(config.family).task_space
    return space.split(n_train, 0, kind=config.split, seed=config.task_split_seed).train


class OffPolicyPhase(IterativePhase):
    """An off-policy objective as a phase: its learner (:attr:`learner_class`) on the
    tasks it draws (:func:`off_policy_tasks`)."""

    learner_class: ClassVar[type[OffPolicyLearner]]

    def __init__(self, context: PhaseContext) -> None:
        super().__init__(context)
        config, name = context.config, self.info.name
        self.settings: OffPolicyConfig = getattr(config, name)
        self.tasks = off_policy_tasks(config, name)
        space = context.family.task_space
        descriptors = torch.as_tensor(np.stack([space.to_descriptor(t) for t in self.tasks]))
        self.learner = self.learner_class(
            context.spec,
            context.network,
            context.family,
            self.tasks,
            descriptors,
            self.settings,
            seed=config.seed + 5,
        )

    @property
    def drawn_tasks(self) -> list[Task]:
        return self.tasks

    def critic(self) -> TaskCritic:
        settings = self.settings
        return TaskCritic.from_state(
            self.info.name,
            settings.critic_hidden,
            settings.gamma,
            self.learner.critic.state_dict(),
        )

    def iterate(self, start: int, on_iteration: OnIteration) -> None:
        self.learner.train(start_iteration=start, on_iteration=on_iteration)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return self.learner.state_tensors()

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        self.learner.load_state(tensors)
