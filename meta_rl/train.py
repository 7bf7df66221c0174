"""The training pipeline: base policy, aligned experts, mapping network, checkpoint."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from meta_rl.checkpoint import TrainedMapping
from meta_rl.divergence import Divergence
from meta_rl.envs import Family, Task, get_family
from meta_rl.envs.task_space import SPLIT_KINDS
from meta_rl.evaluation import collect_states, evaluate_params
from meta_rl.experts import Expert, expert_table, train_base, train_experts
from meta_rl.io import (
    load_optimizer,
    load_tensors,
    optimizer_tensors,
    save_tensors,
    write_json,
)
from meta_rl.mapping import MappingConfig, MappingNetwork
from meta_rl.objectives import OBJECTIVES, DistillData, distill_loss, params_loss
from meta_rl.off_policy import OffPolicyLearner
from meta_rl.parallel import check_backend
from meta_rl.policy_spec import PolicyArch, PolicySpec
from meta_rl.recipes import Recipe, recipe_for
from meta_rl.rl import RLConfig, train_rl
from meta_rl.sacd import SACDConfig, SACDLearner
from meta_rl.td3 import TD3Config, TD3Learner

logger = logging.getLogger(__name__)

OFF_POLICY: dict[str, type[OffPolicyLearner]] = {"td3": TD3Learner, "sacd": SACDLearner}
"""The off-policy phases and their learners."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Settings of ``meta-rl train``.

    Attributes:
        family: Family name (``"Pendulum"``).
        objective: ``"distill"`` (behaviour matching with DAgger states), ``"params"``
            (regression onto expert parameters), ``"rl"`` (PPO through the mapping, no
            experts), ``"td3"`` (TD3 through the mapping, no experts, Box actions),
            ``"sacd"`` (discrete soft actor-critic through the mapping, no experts,
            discrete actions), or two in sequence: ``"distill+rl"``, ``"params+distill"``. Default:
            the family recipe's, the one ``meta-rl select-objective`` chose on validation
            tasks where it has been run (``td3`` for Pendulum; ``rl`` for CartPole,
            Acrobot and MountainCarContinuous), else ``distill``.
        seed: Seed of the base, the experts and the mapping, and of the split unless
            ``split_seed`` is given.
        split_seed: Seed of the train/validation/test split (default: ``seed``). The
            benchmark holds it fixed so that its seeds vary training, not the tasks.
        split: ``"interpolation"`` (test tasks from the whole space) or ``"extrapolation"``
            (test tasks from a held-out edge of the first feature; see ``TaskSpace.split``).
        workdir: Folder of the cached base and experts and the training log.
        workers: Processes that train experts (0: this process).
        backend: ``"local"`` (worker processes here) or ``"ray"`` (experts as Ray tasks;
            see :mod:`meta_rl.parallel`).
        budget_scale: Factor on every env-step budget of the family's recipe (tiny values
            for tests and smoke runs).
        mapping: Shape of the mapping network.
        rounds: Rounds of mapping training; after each ``distill`` round the predicted
            policies visit new states that the experts relabel.
        steps_per_round: Gradient steps per round.
        states_per_task: States collected per task and round.
        batch_states: States per task in one gradient step.
        lr: Adam learning rate of the mapping.
        value_coef: Weight of the value error in ``distill``.
        n_train: Training tasks (default: the recipe's).
        rl: Settings of the ``rl`` phase.
        td3: Settings of the ``td3`` phase.
        sacd: Settings of the ``sacd`` phase.
        resume: Go on from the last finished round of an interrupted run with the same
            settings (its state is saved in ``workdir`` after every round); the result is the
            one an uninterrupted run gives. Without it, training starts afresh.
        progress: Show progress bars.
    """

    family: str = "Pendulum"
    objective: str | None = None
    seed: int = 0
    split_seed: int | None = None
    split: str = "interpolation"
    workdir: Path = Path("runs")
    workers: int = 2
    backend: str = "local"
    budget_scale: float = 1.0
    mapping: MappingConfig = field(default_factory=MappingConfig)
    rounds: int = 6
    steps_per_round: int = 500
    states_per_task: int = 1000
    batch_states: int = 128
    lr: float = 1e-3
    value_coef: float = 0.5
    n_train: int | None = None
    rl: RLConfig = field(default_factory=RLConfig)
    td3: TD3Config = field(default_factory=TD3Config)
    sacd: SACDConfig = field(default_factory=SACDConfig)
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        get_family(self.family)  # a clear error for an unknown family
        if self.objective is None:  # resolved here, so that cache keys name it
            object.__setattr__(self, "objective", recipe_for(self.family).objective)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        for phase in self.objective.split("+"):  # before hours of base training
            if phase in OFF_POLICY:
                OFF_POLICY[phase].check_family(get_family(self.family))
        if self.split not in SPLIT_KINDS:
            raise ValueError(f"split must be one of {SPLIT_KINDS}, got {self.split!r}")
        object.__setattr__(self, "workdir", Path(self.workdir))
        for name in ("rounds", "steps_per_round", "states_per_task", "batch_states"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.workers < 0:
            raise ValueError("workers must be 0 or more")
        check_backend(self.backend)
        if not self.budget_scale > 0:
            raise ValueError("budget_scale must be positive")
        if not self.lr > 0:
            raise ValueError("lr must be positive")
        if self.n_train is not None and self.n_train < 2:
            raise ValueError("n_train must be at least 2")

    @property
    def task_split_seed(self) -> int:
        """The seed the split is drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    def recipe(self) -> Recipe:
        recipe = recipe_for(self.family)
        if self.budget_scale != 1.0:
            recipe = recipe.scaled(self.budget_scale)
        if self.n_train is not None:
            recipe = replace(recipe, n_train=self.n_train)
        return recipe


@dataclass
class _Log:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def update(self, **items: Any) -> None:
        self.data.update(items)
        write_json(self.path, self.data)


def _val_score(
    spec: PolicySpec,
    network: MappingNetwork,
    family: Family,
    tasks: list[Task],
    descriptors: torch.Tensor,
    episodes: int,
    seed: int,
    lengths: list[int],
) -> float:
    with torch.no_grad():
        params = network(descriptors)
    returns = [
        evaluate_params(spec, params[i], family, t, episodes=episodes, seed=seed, lengths=lengths)
        for i, t in enumerate(tasks)
    ]
    return float(np.mean(returns))


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _fault_point(round_: int) -> None:
    """Fault injection for the resume tests: with ``META_RL_PAUSE_AFTER_ROUND=k`` the run
    says so on stderr once round ``k`` is saved, then waits to be killed."""
    target = os.environ.get("META_RL_PAUSE_AFTER_ROUND")
    if target is not None and int(target) == round_:
        print(f"meta-rl: paused after round {round_}", file=sys.stderr, flush=True)
        time.sleep(120)


def settings_key(config: TrainConfig, *, leave_out: tuple[str, ...] = ()) -> str:
    """A hash of the settings that change a run's result: the cache key of its mapping
    (the benchmark) and of its resume state. Where a run goes and how it shows progress do
    not enter it, nor the settings of a phase that does not run; a default ``split_seed``
    is left out so that the keys of earlier runs stay as they were."""
    fields = asdict(config)
    for name in ("workdir", "workers", "backend", "progress", *leave_out):
        fields.pop(name)
    for phase in ("rl", *OFF_POLICY):  # a new phase's settings leave older keys as they were
        if phase not in config.objective.split("+"):
            fields.pop(phase)
        elif phase in OFF_POLICY and not fields[phase]["average_tau"]:
            del fields[phase]["average_tau"]  # so does a new setting at its default
    if config.split_seed in (None, config.seed):
        fields.pop("split_seed")
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def off_policy_tasks(config: TrainConfig, phase: str) -> list[Task]:
    """The training tasks an off-policy phase (``td3``, ``sacd``) of ``config`` learns from.

    It trains no expert per task, so it may draw more tasks for free (``settings.tasks``):
    the split's own training stream, longer; the validation and test tasks do not change.
    ``None``: the split's training tasks.
    """
    settings: TD3Config | SACDConfig = getattr(config, phase)
    n_train = config.recipe().n_train if settings.tasks is None else settings.tasks
    space = get_family(config.family).task_space
    return space.split(n_train, 0, kind=config.split, seed=config.task_split_seed).train


def _resume_path(config: TrainConfig, cache: Path) -> Path:
    """The file that holds an unfinished run's state, keyed by every setting that matters."""
    key = settings_key(config, leave_out=("resume",))
    return cache / f"resume-{key[:16]}.safetensors"


def train(config: TrainConfig) -> tuple[TrainedMapping, dict[str, Any]]:
    """Run the whole pipeline and return the trained mapping and the training log.

    The log is also written to ``workdir/<family>/train_log.json`` as training goes.
    """
    torch.manual_seed(config.seed)
    started = time.time()
    family = get_family(config.family)
    recipe = config.recipe()
    space = family.task_space
    split = space.split(
        recipe.n_train,
        recipe.n_test,
        n_val=recipe.n_val,
        kind=config.split,
        seed=config.task_split_seed,
    )
    probe = family.make()
    arch = PolicyArch.for_env(probe, pi=recipe.pi, vf=recipe.vf, log_std_init=recipe.log_std_init)
    probe.close()
    spec = PolicySpec(arch)
    cache = config.workdir / family.name.lower()
    log = _Log(cache / "train_log.json")
    log.update(
        config={**asdict(config), "workdir": str(config.workdir)},
        split={"train": split.train, "val": split.val, "test": split.test},
    )

    base, base_steps = train_base(
        family, recipe, arch, seed=config.seed, cache_dir=cache, progress=config.progress
    )
    phases = config.objective.split("+")
    experts: list[Expert] = []
    if set(phases) & {"params", "distill"}:  # ``rl`` alone learns without experts
        experts = train_experts(
            family,
            split.train,
            base,
            recipe,
            arch,
            seed=config.seed + 1,
            cache_dir=cache,
            workers=config.workers,
            backend=config.backend,
            progress=config.progress,
        )
    expert_steps = sum(e.env_steps for e in experts)
    env_steps = base_steps + expert_steps
    log.update(
        experts=expert_table(experts),
        env_steps={"base": base_steps, "experts": expert_steps},
    )

    # Seeded here: SB3 reseeds torch's global generator whenever it trains in this process,
    # which it does or not depending on caches and workers.
    torch.manual_seed(config.seed)
    network = MappingNetwork(space.dim, base, config.mapping)
    descriptors = torch.as_tensor(np.stack([space.to_descriptor(t) for t in split.train]))
    val_desc = torch.as_tensor(np.stack([space.to_descriptor(t) for t in split.val]))
    generator = torch.Generator().manual_seed(config.seed)
    val_episodes = max(1, recipe.eval_episodes // 2)

    def val_score() -> float:
        nonlocal env_steps
        lengths: list[int] = []
        score = _val_score(
            spec, network, family, split.val, val_desc, val_episodes, config.seed + 7, lengths
        )
        env_steps += sum(lengths)
        return score

    resume_path = _resume_path(config, cache)
    resumed: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None
    if config.resume and resume_path.exists():
        resumed = load_tensors(resume_path)
        logger.info("resuming from %s", resume_path)
    if resumed is None:
        best = {"score": val_score(), "round": 0, "state": copy.deepcopy(network.state_dict())}
        history: list[dict[str, Any]] = [{"round": 0, "val_return": best["score"]}]
        position = (0, 0)  # (phase, rounds or rl iterations done in it)
    else:
        tensors, meta = resumed
        network.load_state_dict(_prefixed(tensors, "network."))
        best = {"score": meta["best_score"], "round": meta["best_round"]}
        best["state"] = _prefixed(tensors, "best.")
        history = meta["history"]
        env_steps = meta["env_steps"]
        generator.set_state(tensors["generator"])
        position = (meta["phase"], meta["done"])
    log.update(mapping_history=history)
    drawn: dict[str, list[Task]] = {}  # tasks a phase drew beyond the split's (off-policy)

    def save_state(
        phase: int, done: int, extra: dict[str, torch.Tensor], phase_env_steps: int = 0
    ) -> None:
        """Everything a resumed run needs to go on exactly from here (atomic): the
        network, the best state, and the phase's own state in ``extra``."""
        tensors = {f"network.{k}": v for k, v in network.state_dict().items()}
        tensors.update({f"best.{k}": v for k, v in best["state"].items()})
        tensors["generator"] = generator.get_state()
        tensors.update(extra)
        meta = {
            "phase": phase,
            "done": done,
            "history": history,
            "best_score": best["score"],
            "best_round": best["round"],
            "env_steps": env_steps,
            "phase_env_steps": phase_env_steps,
        }
        save_tensors(resume_path, tensors, meta)

    def checkpoint_round(phase: str, stats: dict[str, float]) -> float:
        """Score the validation tasks; keep the network if it is the best so far.

        A tie goes to the later, more trained network: where returns are capped (CartPole's
        500), validation stops telling rounds apart once every task reaches the cap, and
        keeping the first such round threw away most of the training. On CartPole's `rl`
        runs the last round scored 498 on the 24 selection tasks where the first at the cap
        scored 454 (docs/benchmarks/cartpole-objectives/selection, README).
        """
        nonlocal best
        score = val_score()
        round_ = len(history)
        history.append({"round": round_, "phase": phase, "val_return": score, **stats})
        if score >= best["score"]:
            best = {"score": score, "round": round_, "state": copy.deepcopy(network.state_dict())}
        log.update(mapping_history=history)
        return score

    def supervised(index: int, phase: str, done: int) -> None:
        """``params`` or ``distill`` rounds (``distill`` adds DAgger states each round),
        from round ``done + 1`` on (a resumed run)."""
        nonlocal env_steps
        expert_params = torch.stack([e.params for e in experts])
        optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
        data = DistillData()
        if done:
            assert resumed is not None
            load_optimizer(optimizer, resumed[0], "optimizer")
            data = DistillData.from_tensors(resumed[0])

        def relabel(params: torch.Tensor, tasks: list[Task], seed: int) -> None:
            """States visited by ``params`` (one row per task), labelled by the experts."""
            nonlocal env_steps
            states = [
                collect_states(
                    spec, params[i], family, t, n_states=config.states_per_task, seed=seed + i
                )
                for i, t in enumerate(tasks)
            ]
            data.add(spec, expert_params, states)
            env_steps += len(tasks) * config.states_per_task

        if phase == "distill" and not done:
            relabel(expert_params, [e.task for e in experts], config.seed + 100)
        bar = tqdm(
            total=config.rounds * config.steps_per_round,
            initial=done * config.steps_per_round,
            desc=f"mapping ({phase})",
            unit="step",
            disable=not config.progress,
        )
        for round_ in range(done + 1, config.rounds + 1):
            stats: dict[str, float] = {}
            for _ in range(config.steps_per_round):
                predicted = network(descriptors)
                if phase == "params":
                    loss = params_loss(predicted, expert_params)
                    stats = {"params": float(loss.detach())}
                else:
                    obs, targets = data.batch(config.batch_states, generator)
                    loss, stats = distill_loss(
                        spec, predicted, obs, targets, data.value_scale, config.value_coef
                    )
                optimizer.zero_grad()
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                if not (torch.isfinite(loss) and torch.isfinite(norm)):
                    raise Divergence(
                        f"{phase} objective: the loss or its gradient became "
                        f"{float(loss.detach())} / {float(norm)} in round {round_}"
                    )
                optimizer.step()
                bar.update(1)
            bar.set_postfix(val_return=f"{checkpoint_round(phase, stats):.1f}")
            if phase == "distill" and round_ < config.rounds:
                # DAgger: the states the *predicted* policies visit, labelled by the experts.
                with torch.no_grad():
                    predicted = network(descriptors)
                relabel(predicted, split.train, config.seed + 1000 * round_)
            save_state(
                index, round_, {**optimizer_tensors(optimizer, "optimizer"), **data.to_tensors()}
            )
            if round_ < config.rounds:
                _fault_point(len(history) - 1)
        bar.close()

    def iterate(
        index: int,
        phase: str,
        done: int,
        total: int,
        eval_every: int,
        run: Callable[[int, Callable[[int, int, dict[str, Any]], None]], Any],
        state: Callable[[], dict[str, torch.Tensor]],
    ) -> None:
        """An iterative objective (``rl``, ``td3``, ``sacd``) from iteration ``done + 1`` on: scored
        on validation every ``eval_every`` iterations and at the end, its resume state
        (``state()``) saved after each. ``run(done, on_iteration)`` trains."""
        nonlocal env_steps
        counted = [0]  # env steps of this call already added to env_steps
        # The phase's env steps before an interruption, so that its history counts on.
        before = int(resumed[1].get("phase_env_steps", 0)) if done and resumed else 0
        bar = tqdm(
            total=total,
            initial=done,
            desc=f"mapping ({phase})",
            unit="it",
            disable=not config.progress,
        )

        def on_iteration(iteration: int, steps: int, stats: dict[str, Any]) -> None:
            nonlocal env_steps
            env_steps += steps - counted[0]
            counted[0] = steps
            bar.update(1)
            if iteration % eval_every == 0 or iteration == total:
                stats = {**stats, "iteration": iteration, f"{phase}_env_steps": before + steps}
                bar.set_postfix(val_return=f"{checkpoint_round(phase, stats):.1f}")
            save_state(index, iteration, state(), before + steps)
            if iteration < total:
                _fault_point(len(history) - 1)

        try:
            run(done, on_iteration)
        except Divergence as err:
            env_steps += err.env_steps - counted[0]  # the steps of the failed iterations too
            raise
        finally:
            bar.close()

    def reinforce(index: int, done: int) -> None:
        """PPO through the mapping (resumed after iteration ``done``)."""
        optimizer = torch.optim.Adam(network.parameters(), lr=config.rl.lr)
        rl_generator = torch.Generator().manual_seed(config.seed + 3)
        if done:
            assert resumed is not None
            load_optimizer(optimizer, resumed[0], "optimizer")
            rl_generator.set_state(resumed[0]["rl_generator"])

        def run(start: int, on_iteration: Callable[[int, int, dict[str, Any]], None]) -> int:
            return train_rl(
                spec,
                network,
                family,
                split.train,
                descriptors,
                config.rl,
                gamma=float(recipe.ppo.get("gamma", 0.99)),
                gae_lambda=float(recipe.ppo.get("gae_lambda", 0.95)),
                seed=config.seed + 3,
                optimizer=optimizer,
                generator=rl_generator,
                start_iteration=start,
                on_iteration=on_iteration,
            )

        def state() -> dict[str, torch.Tensor]:
            return {
                **optimizer_tensors(optimizer, "optimizer"),
                "rl_generator": rl_generator.get_state(),
            }

        iterate(index, "rl", done, config.rl.iterations, config.rl.eval_every, run, state)

    def off_policy(index: int, phase: str, done: int) -> None:
        """TD3 or SAC-Discrete through the mapping (resumed after iteration ``done``)."""
        settings: TD3Config | SACDConfig = getattr(config, phase)
        tasks = off_policy_tasks(config, phase)
        if settings.tasks is not None:
            log.update(**{f"{phase}_tasks": len(tasks)})
        drawn[f"{phase}_tasks"] = tasks  # recorded in the checkpoint beside the split
        phase_descriptors = torch.as_tensor(np.stack([space.to_descriptor(t) for t in tasks]))
        learner = OFF_POLICY[phase](
            spec, network, family, tasks, phase_descriptors, settings, seed=config.seed + 5
        )
        if done:
            assert resumed is not None
            learner.load_state(resumed[0])

        def run(start: int, on_iteration: Callable[[int, int, dict[str, Any]], None]) -> int:
            return learner.train(start_iteration=start, on_iteration=on_iteration)

        iterate(
            index, phase, done, settings.iterations, settings.eval_every, run, learner.state_tensors
        )

    for index, phase in enumerate(phases):
        if index < position[0]:
            continue  # finished before the interruption
        done = position[1] if index == position[0] else 0
        try:
            if phase == "rl":
                reinforce(index, done)
            elif phase in OFF_POLICY:
                off_policy(index, phase, done)
            else:
                supervised(index, phase, done)
        except Divergence as err:  # keep the best mapping so far, and say so
            logger.warning("%s; keeping the best mapping so far (round %d)", err, best["round"])
            history.append({"round": len(history), "phase": phase, "diverged": str(err)})
            log.update(mapping_history=history)
    network.load_state_dict(best["state"])
    info = {
        "split": {"train": split.train, "val": split.val, "test": split.test},
        "val_return": best["score"],
        "selected_round": best["round"],
        "history": history,
        "env_steps": env_steps,
        "seed": config.seed,
        "split_seed": config.task_split_seed,
        "split_kind": config.split,
        "seconds": round(time.time() - started, 1),
        "experts": expert_table(experts),
        **drawn,
    }
    trained = TrainedMapping(
        family_name=family.name,
        task_space=space,
        arch=arch,
        network=network,
        objective=config.objective,
        recipe=recipe,
        info=info,
    )
    log.update(result={k: v for k, v in info.items() if k != "split" and k not in drawn})
    return trained, log.data
