"""The trainer: base policy, aligned experts where a phase needs them, then the phases of the
objective, with early stopping on validation tasks and a state that resumes exactly.

The pipeline in order (:meth:`Trainer.run`):

1. split the family's task space into training, validation and test tasks;
2. train (or find in the cache) the base policy on the default task;
3. if a phase learns from experts, fine-tune one expert per training task from the base;
4. build the mapping network, whose untrained output is exactly the base policy;
5. run each phase of the objective; after each of its units the trainer scores the
   validation tasks when the phase asks, keeps the best network so far (a tie goes to the
   later, more trained one) and saves everything a resumed run needs;
6. return the best network as a :class:`~meta_rl.mapping.checkpoint.TrainedMapping`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from meta_rl.envs import Family, Task, TaskSplit, get_family
from meta_rl.errors import MetaRLError
from meta_rl.evaluation import evaluate_params
from meta_rl.infra.divergence import Divergence
from meta_rl.infra.files import (
    load_tensors,
    remove_leftovers,
    run_lock,
    save_tensors,
    write_json,
)
from meta_rl.infra.threads import DEFAULT_THREADS, torch_threads
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.critic import PREFIX as CRITIC_PREFIX
from meta_rl.mapping.critic import TaskCritic
from meta_rl.mapping.network import MappingNetwork
from meta_rl.mapping.policy import PolicyArch, PolicySpec
from meta_rl.objectives.phase import Phase, PhaseContext
from meta_rl.objectives.registry import parse_objective
from meta_rl.training.config import TrainConfig, settings_key
from meta_rl.training.experts import Expert, expert_table, train_base, train_experts
from meta_rl.training.health import (
    WeakBaseError,
    check_base,
    random_return,
    summary,
    weak_base_message,
)
from meta_rl.training.inference import describe as describe_inference
from meta_rl.training.inference import train_inference
from meta_rl.training.recipes import automatic_notes

logger = logging.getLogger(__name__)

LOCK_NAME = ".meta-rl.lock"
"""The lock file a run holds in its work folder."""

OnSaved = Callable[[int], None]
"""Called after a unit's state is saved (not after a phase's last unit) with the round
number of the last validation; a test may stop the run there to check that it resumes."""


@dataclass
class TrainingLog:
    """The training log, rewritten atomically at ``path`` whenever it changes."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def update(self, **items: Any) -> None:
        self.data.update(items)
        write_json(self.path, self.data)


@dataclass
class Best:
    """The best validation score so far, the round that reached it, and its network."""

    score: float
    round: int
    state: dict[str, torch.Tensor]
    critic: TaskCritic | None = None
    """The off-policy phase's critic at that round (kept in the checkpoint), if any."""


def validation_score(
    spec: PolicySpec,
    network: MappingNetwork,
    family: Family,
    tasks: list[Task],
    descriptors: torch.Tensor,
    episodes: int,
    seed: int,
    lengths: list[int],
) -> float:
    """Mean deterministic return of the network's predictions on ``tasks``; the length of
    every episode is appended to ``lengths``."""
    with torch.no_grad():
        params = network(descriptors)
    returns = [
        evaluate_params(spec, params[i], family, t, episodes=episodes, seed=seed, lengths=lengths)
        for i, t in enumerate(tasks)
    ]
    return float(np.mean(returns))


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _descriptors(family: Family, tasks: list[Task]) -> torch.Tensor:
    space = family.task_space
    return torch.as_tensor(np.stack([space.to_descriptor(t) for t in tasks]))


class Trainer:
    """One training run of a mapping (see the module's docstring for its steps).

    Args:
        config: The run's settings.
        on_saved: Called after each saved unit that is not a phase's last (see
            :data:`OnSaved`); the resume tests stop a run there.
    """

    def __init__(self, config: TrainConfig, *, on_saved: OnSaved | None = None) -> None:
        self.config = config
        self.on_saved = on_saved
        self.family = get_family(config.family)
        self.recipe = config.resolved_recipe()
        self.phases = parse_objective(config.objective)
        self.cache = config.workdir / self.family.name.lower()
        self.log = TrainingLog(self.cache / "train_log.json")
        self.resume_path = self.cache / f"resume-{settings_key(config)[:16]}.safetensors"
        self.env_steps = 0
        self.check_env_steps = 0  # the health checks' episodes (meta_rl.training.health)
        self.summary: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.drawn: dict[str, list[Task]] = {}  # tasks a phase drew beyond the split's
        self.experts: list[Expert] = []

    # ------------------------------------------------------------------ stages
    def split(self) -> TaskSplit:
        recipe = self.recipe
        return self.family.task_space.split(
            recipe.n_train,
            recipe.n_test,
            n_val=recipe.n_val,
            kind=self.config.split,
            seed=self.config.task_split_seed,
        )

    def policy_arch(self) -> PolicyArch:
        probe = self.family.make()
        try:
            recipe = self.recipe
            return PolicyArch.for_env(
                probe,
                pi=recipe.pi,
                vf=recipe.vf,
                activation=recipe.activation,
                log_std_init=recipe.log_std_init,
            )
        finally:
            probe.close()

    def validation_score(self) -> float:
        """Score the mapping's predictions on the validation tasks (their episodes count as
        env steps)."""
        lengths: list[int] = []
        score = validation_score(
            self.spec,
            self.network,
            self.family,
            self.tasks.val,
            self.val_descriptors,
            max(1, self.recipe.eval_episodes // 2),
            self.config.seed + 7,
            lengths,
        )
        self.env_steps += sum(lengths)
        return score

    def run(self) -> tuple[TrainedMapping, dict[str, Any]]:
        """Run the pipeline; the trained mapping (the best network on validation) and the
        training log, which is also written to ``workdir/<family>/train_log.json``.

        It runs on one torch thread, as the command line does (float sums depend on the
        thread count), and gives the process its own count back. The run holds a lock on
        ``workdir/<family>`` throughout: a second run there fails at once with
        :class:`~meta_rl.errors.BusyError` instead of mixing its log and resume state with
        this one's. Temporary files that killed runs left there are removed.

        Raises:
            BusyError: another run is using the work folder.
        """
        with (
            torch_threads(DEFAULT_THREADS),
            run_lock(self.cache / LOCK_NAME, f"the work folder {self.cache}"),
        ):
            removed = remove_leftovers(self.cache)
            if removed:
                logger.info("removed %d temporary files of interrupted writes", len(removed))
            return self._run()

    def _run(self) -> tuple[TrainedMapping, dict[str, Any]]:
        config, family = self.config, self.family
        torch.manual_seed(config.seed)
        started = time.time()
        self.tasks = self.split()
        arch = self.policy_arch()
        self.spec = PolicySpec(arch)
        split_json = {"train": self.tasks.train, "val": self.tasks.val, "test": self.tasks.test}
        self.log.update(config={**asdict(config), "workdir": str(config.workdir)}, split=split_json)
        notes = () if config.recipe is not None else automatic_notes(family.name)
        for line in notes:
            logger.info(line)
        if notes:
            self.log.update(recipe_notes=list(notes))

        base, base_steps = train_base(
            family,
            self.recipe,
            arch,
            seed=config.seed,
            cache_dir=self.cache,
            progress=config.progress,
        )
        self._check_base(base, base_steps)
        if any(phase.info.needs_experts for phase in self.phases):
            self.experts = train_experts(
                family,
                self.tasks.train,
                base,
                self.recipe,
                arch,
                seed=config.seed + 1,
                cache_dir=self.cache,
                workers=config.workers,
                backend=config.backend,
                progress=config.progress,
            )
        expert_steps = sum(e.env_steps for e in self.experts)
        self.env_steps = base_steps + expert_steps
        self.log.update(
            experts=expert_table(self.experts),
            env_steps={"base": base_steps, "experts": expert_steps},
        )

        # Seeded here: SB3 reseeds torch's global generator whenever it trains in this
        # process, which it does or not depending on caches and workers.
        torch.manual_seed(config.seed)
        self.network = MappingNetwork(family.task_space.dim, base, config.mapping)
        self.val_descriptors = _descriptors(family, self.tasks.val)
        position, resumed = self._start()
        for index, phase_class in enumerate(self.phases):
            if index < position[0]:
                continue  # finished before the interruption
            done = position[1] if index == position[0] else 0
            phase = phase_class(self._context())
            if done:
                phase.restore(resumed)
                phase.env_steps_before = int(self._resumed_meta.get("phase_env_steps", 0))
            self._run_phase(index, phase, done)

        self.network.load_state_dict(self.best.state)
        self._summarise()
        info = {
            "split": split_json,
            "val_return": self.best.score,
            "selected_round": self.best.round,
            "history": self.history,
            "env_steps": self.env_steps,
            "seed": config.seed,
            "split_seed": config.task_split_seed,
            "split_kind": config.split,
            "seconds": round(time.time() - started, 1),
            "experts": expert_table(self.experts),
            "summary": self.summary,
            "check_env_steps": self.check_env_steps,
            **self.drawn,
        }
        trained = TrainedMapping(
            family_name=family.name,
            task_space=family.task_space,
            arch=arch,
            network=self.network,
            objective=config.objective,
            recipe=self.recipe,
            info=info,
            critic=self.best.critic,
        )
        if config.inference is not None:
            try:
                trained.inference = train_inference(trained, config.inference, seed=config.seed)
            except MetaRLError as err:  # the mapping is kept: an encoder can come later
                logger.warning(
                    "warning: no inference model (%s); the mapping is saved without one, "
                    "`meta-rl add-inference` can add one",
                    err,
                )
            else:
                for line in describe_inference(trained.inference.report):
                    logger.info(line)
                self.log.update(inference=trained.inference.report)
        self.log.update(
            result={k: v for k, v in info.items() if k != "split" and k not in self.drawn}
        )
        return trained, self.log.data

    # ------------------------------------------------------------------ checks
    def _check_base(self, base: torch.Tensor, base_steps: int) -> None:
        """Stop (unless ``keep_going``) where the base is no better than random."""
        check = check_base(
            self.family,
            self.spec,
            base,
            episodes=self.recipe.eval_episodes,
            seed=self.config.seed + 11,
        )
        self.check_env_steps = check.env_steps
        self.log.update(base_check=check.to_json(), check_env_steps=self.check_env_steps)
        if not check.weak:
            return
        # Experts are fine-tuned from the base: for their objectives a base that learned
        # nothing is fatal. rl, td3 and sacd learn through the mapping from any start.
        fatal = any(phase.info.needs_experts for phase in self.phases)
        message = weak_base_message(
            self.family, check, base_steps, self.config.objective, fatal=fatal
        )
        if fatal and not self.config.keep_going:
            raise WeakBaseError(message)
        logger.warning("warning: %s", message)

    def _summarise(self) -> None:
        """Random, base, experts and mapping side by side (logged, and in the log)."""
        lengths: list[int] = []
        random_val = random_return(
            self.family,
            self.tasks.val,
            episodes=max(1, self.recipe.eval_episodes // 2),
            seed=self.config.seed + 7,
            lengths=lengths,
        )
        self.check_env_steps += sum(lengths)
        base_val = float(self.history[0]["val_return"])
        data, lines = summary(
            random_val=random_val,
            base_val=base_val,
            mapping_val=float(self.best.score),
            selected_round=self.best.round,
            experts=self.experts,
            margin=0.05 * abs(base_val - random_val),
        )
        for line in lines:
            (logger.warning if line.startswith("warning") else logger.info)(line)
        self.log.update(summary=data, check_env_steps=self.check_env_steps)
        self.summary = data

    # ------------------------------------------------------------------ phases
    def _context(self) -> PhaseContext:
        return PhaseContext(
            config=self.config,
            recipe=self.recipe,
            family=self.family,
            spec=self.spec,
            network=self.network,
            tasks=self.tasks.train,
            descriptors=_descriptors(self.family, self.tasks.train),
            experts=self.experts,
        )

    def _start(self) -> tuple[tuple[int, int], dict[str, torch.Tensor]]:
        """Where the phases start: (phase index, units done in it), and the saved tensors
        of an interrupted run (``--resume``), or a fresh start scored on validation."""
        self._resumed_meta: dict[str, Any] = {}
        if self.config.resume and self.resume_path.exists():
            tensors, meta = load_tensors(self.resume_path)
            logger.info("resuming from %s", self.resume_path)
            self.network.load_state_dict(_prefixed(tensors, "network."))
            critic = meta.get("best_critic")
            self.best = Best(
                meta["best_score"],
                meta["best_round"],
                _prefixed(tensors, "best."),
                None
                if critic is None
                else TaskCritic.from_state(
                    critic["objective"],
                    critic["hidden"],
                    critic["gamma"],
                    _prefixed(tensors, f"best_{CRITIC_PREFIX}"),
                ),
            )
            self.history = meta["history"]
            self.env_steps = meta["env_steps"]
            self._resumed_meta = meta
            self.log.update(mapping_history=self.history)
            return (meta["phase"], meta["done"]), tensors
        score = self.validation_score()
        self.best = Best(score, 0, copy.deepcopy(self.network.state_dict()))
        self.history = [{"round": 0, "val_return": score}]
        self.log.update(mapping_history=self.history)
        return (0, 0), {}

    def _run_phase(self, index: int, phase: Phase, done: int) -> None:
        """Units ``done + 1`` on of ``phase``; its divergence keeps the best network."""
        name = phase.info.name
        if phase.drawn_tasks is not None:
            self.drawn[f"{name}_tasks"] = phase.drawn_tasks  # recorded in the checkpoint
            if getattr(self.config, name).tasks is not None:
                self.log.update(**{f"{name}_tasks": len(phase.drawn_tasks)})
        self._counted = 0  # the phase's env steps already added to self.env_steps
        self._bar = tqdm(
            total=phase.total,
            initial=done,
            desc=f"mapping ({name})",
            unit=phase.unit,
            disable=not self.config.progress,
        )
        try:
            phase.run(done, lambda unit, stats: self._after_unit(index, phase, unit, stats))
        except Divergence as err:  # keep the best mapping so far, and say so
            self._count(phase)  # the steps of the failed unit too
            logger.warning("%s; keeping the best mapping so far (round %d)", err, self.best.round)
            self.history.append({"round": len(self.history), "phase": name, "diverged": str(err)})
            self.log.update(mapping_history=self.history)
        finally:
            self._bar.close()

    def _count(self, phase: Phase) -> None:
        """Add the phase's env steps since the last count to the run's."""
        self.env_steps += phase.env_steps - self._counted
        self._counted = phase.env_steps

    def _after_unit(self, index: int, phase: Phase, unit: int, stats: dict[str, Any]) -> None:
        """After each unit: count its env steps, validate if the phase asks, save."""
        self._count(phase)
        self._bar.update(1)
        if phase.validates(unit):
            score = self._validate(phase, stats)
            self._bar.set_postfix(val_return=f"{score:.1f}")
        self._save(index, unit, phase)
        if unit < phase.total and self.on_saved is not None:
            self.on_saved(len(self.history) - 1)

    def _validate(self, phase: Phase, stats: dict[str, Any]) -> float:
        """Score the validation tasks; keep the network if it is the best so far. A tie goes
        to the later, more trained network: where returns are capped (CartPole's 500),
        validation stops telling rounds apart once every task reaches the cap."""
        score = self.validation_score()
        round_ = len(self.history)
        self.history.append(
            {"round": round_, "phase": phase.info.name, "val_return": score, **stats}
        )
        if score >= self.best.score:
            state = copy.deepcopy(self.network.state_dict())
            self.best = Best(score, round_, state, phase.critic())
        self.log.update(mapping_history=self.history)
        return score

    def _save(self, index: int, unit: int, phase: Phase) -> None:
        """Everything a resumed run needs to go on exactly from here (written atomically):
        the network, the best network, the history and the phase's own state."""
        tensors = {f"network.{k}": v for k, v in self.network.state_dict().items()}
        tensors.update({f"best.{k}": v for k, v in self.best.state.items()})
        critic = self.best.critic
        if critic is not None:
            tensors.update({f"best_{k}": v for k, v in critic.checkpoint_tensors().items()})
        tensors.update(phase.state_tensors())
        meta = {
            "phase": index,
            "done": unit,
            "history": self.history,
            "best_score": self.best.score,
            "best_round": self.best.round,
            "best_critic": None if critic is None else critic.to_json(),
            "env_steps": self.env_steps,
            "phase_env_steps": phase.env_steps_before + phase.env_steps,
        }
        save_tensors(self.resume_path, tensors, meta)


class TrainResult(NamedTuple):
    """What :func:`train` returns: ``result.mapping`` and ``result.log``, or unpacked,
    ``mapping, log = train(config)``. The functions of :mod:`meta_rl.agents` take it where
    they take a mapping (``adapt(train(config), env)``)."""

    mapping: TrainedMapping
    """The trained mapping (the best network on the validation tasks)."""
    log: dict[str, Any]
    """The training log, also written to ``workdir/<family>/train_log.json``."""


def train(config: TrainConfig, *, on_saved: OnSaved | None = None) -> TrainResult:
    """Train a mapping: ``Trainer(config, on_saved=on_saved).run()``.

    Returns:
        The trained mapping and the training log (also written to
        ``workdir/<family>/train_log.json`` as training goes), as a :class:`TrainResult`.
    """
    return TrainResult(*Trainer(config, on_saved=on_saved).run())


__all__ = ["TrainResult", "Trainer", "TrainingLog", "train", "validation_score"]
