"""The training pipeline: base policy, aligned experts, mapping network, checkpoint."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from meta_rl.checkpoint import TrainedMapping
from meta_rl.envs import Family, Task, get_family
from meta_rl.evaluation import collect_states, evaluate_params
from meta_rl.experts import Expert, expert_table, train_base, train_experts
from meta_rl.io import write_json
from meta_rl.mapping import MappingConfig, MappingNetwork
from meta_rl.objectives import OBJECTIVES, DistillData, distill_loss, params_loss
from meta_rl.policy_spec import PolicyArch, PolicySpec
from meta_rl.recipes import Recipe, recipe_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Settings of ``meta-rl train``.

    Attributes:
        family: Family name (``"Pendulum"``).
        objective: ``"distill"`` (behaviour matching with DAgger states) or ``"params"``
            (regression onto expert parameters).
        seed: Seed of the split, the base, the experts and the mapping.
        workdir: Folder of the cached base and experts and the training log.
        workers: Processes that train experts (0: this process).
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
        progress: Show progress bars.
    """

    family: str = "Pendulum"
    objective: str = "distill"
    seed: int = 0
    workdir: Path = Path("runs")
    workers: int = 2
    budget_scale: float = 1.0
    mapping: MappingConfig = field(default_factory=MappingConfig)
    rounds: int = 6
    steps_per_round: int = 500
    states_per_task: int = 1000
    batch_states: int = 128
    lr: float = 1e-3
    value_coef: float = 0.5
    n_train: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        get_family(self.family)  # a clear error for an unknown family
        object.__setattr__(self, "workdir", Path(self.workdir))
        for name in ("rounds", "steps_per_round", "states_per_task", "batch_states"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.workers < 0:
            raise ValueError("workers must be 0 or more")
        if not self.budget_scale > 0:
            raise ValueError("budget_scale must be positive")
        if not self.lr > 0:
            raise ValueError("lr must be positive")
        if self.n_train is not None and self.n_train < 2:
            raise ValueError("n_train must be at least 2")

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


def train(config: TrainConfig) -> tuple[TrainedMapping, dict[str, Any]]:
    """Run the whole pipeline and return the trained mapping and the training log.

    The log is also written to ``workdir/<family>/train_log.json`` as training goes.
    """
    torch.manual_seed(config.seed)
    started = time.time()
    family = get_family(config.family)
    recipe = config.recipe()
    space = family.task_space
    split = space.split(recipe.n_train, recipe.n_test, n_val=recipe.n_val, seed=config.seed)
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
    experts: list[Expert] = train_experts(
        family,
        split.train,
        base,
        recipe,
        arch,
        seed=config.seed + 1,
        cache_dir=cache,
        workers=config.workers,
        progress=config.progress,
    )
    expert_steps = sum(e.env_steps for e in experts)
    env_steps = base_steps + expert_steps
    log.update(
        experts=expert_table(experts),
        env_steps={"base": base_steps, "experts": expert_steps},
    )

    network = MappingNetwork(space.dim, base, config.mapping)
    descriptors = torch.as_tensor(np.stack([space.to_descriptor(t) for t in split.train]))
    val_desc = torch.as_tensor(np.stack([space.to_descriptor(t) for t in split.val]))
    expert_params = torch.stack([e.params for e in experts])
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
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

    data = DistillData()
    if config.objective == "distill":
        data.add(
            spec,
            expert_params,
            [
                collect_states(
                    spec,
                    e.params,
                    family,
                    e.task,
                    n_states=config.states_per_task,
                    seed=config.seed + 100 + i,
                )
                for i, e in enumerate(experts)
            ],
        )
        env_steps += len(experts) * config.states_per_task

    best = {"score": val_score(), "round": 0, "state": copy.deepcopy(network.state_dict())}
    history: list[dict[str, Any]] = [{"round": 0, "val_return": best["score"]}]
    total = config.rounds * config.steps_per_round
    bar = tqdm(
        total=total, desc=f"mapping ({config.objective})", unit="step", disable=not config.progress
    )
    for round_ in range(1, config.rounds + 1):
        stats: dict[str, float] = {}
        for _ in range(config.steps_per_round):
            predicted = network(descriptors)
            if config.objective == "params":
                loss = params_loss(predicted, expert_params)
                stats = {"params": float(loss.detach())}
            else:
                obs, targets = data.batch(config.batch_states, generator)
                loss, stats = distill_loss(
                    spec, predicted, obs, targets, data.value_scale, config.value_coef
                )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            bar.update(1)
        score = val_score()
        history.append({"round": round_, "val_return": score, **stats})
        bar.set_postfix(val_return=f"{score:.1f}")
        if score > best["score"]:
            best = {"score": score, "round": round_, "state": copy.deepcopy(network.state_dict())}
        if config.objective == "distill" and round_ < config.rounds:
            with torch.no_grad():
                predicted = network(descriptors)
            data.add(
                spec,
                expert_params,
                [
                    collect_states(
                        spec,
                        predicted[i],
                        family,
                        t,
                        n_states=config.states_per_task,
                        seed=config.seed + 1000 * round_ + i,
                    )
                    for i, t in enumerate(split.train)
                ],
            )
            env_steps += len(split.train) * config.states_per_task
        log.update(mapping_history=history)
    bar.close()
    network.load_state_dict(best["state"])
    info = {
        "split": {"train": split.train, "val": split.val, "test": split.test},
        "val_return": best["score"],
        "selected_round": best["round"],
        "history": history,
        "env_steps": env_steps,
        "seed": config.seed,
        "seconds": round(time.time() - started, 1),
        "experts": expert_table(experts),
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
    log.update(result={k: v for k, v in info.items() if k != "split"})
    return trained, log.data
