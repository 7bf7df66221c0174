"""``meta-rl select-objective FAMILY``: choose the mapping's objective on validation tasks.

Every objective is trained for every seed on the same split (the benchmark's), then each
mapping predicts a policy for ``val_tasks`` further validation tasks: drawn from the
split's validation stream after the ``recipe.n_val`` tasks that early stopping uses, so
that no candidate is scored on the tasks its checkpoint was picked on. They are scored by
deterministic episodes; test tasks are never touched. The objective with the highest mean
validation return wins; the report gives each objective's mean with a two-level bootstrap
interval (seeds, then tasks) and its paired difference to the first objective listed, on
the same tasks and episode seeds. Mappings are cached by their settings in ``out_dir``, so
a rerun only scores; the base and experts are shared with ``meta-rl train`` and the
benchmark through ``workdir``. A benchmark run's ``distill`` mapping has the same cache key
(``rl`` settings do not enter it), so its file, copied into ``<out_dir>/distill-seed<k>/``,
is reused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meta_rl.benchmarks.benchmark import mapping_for, run_train_config
from meta_rl.benchmarks.results import (
    ObjectiveSummary,
    SelectionResult,
    SelectionRun,
    bootstrap_ci,
)
from meta_rl.benchmarks.score import budget_scale
from meta_rl.envs import get_family
from meta_rl.envs.task_space import SPLIT_KINDS
from meta_rl.errors import ConfigError
from meta_rl.evaluation import evaluate_params
from meta_rl.infra.files import write_json, write_text
from meta_rl.infra.parallel import check_backend, run_jobs
from meta_rl.infra.threads import torch_threads
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.objectives.registry import parse_objective
from meta_rl.training.config import TrainConfig


@dataclass(frozen=True, kw_only=True)
class SelectionConfig:
    """Settings of ``meta-rl select-objective``.

    Attributes:
        family: Family name.
        objectives: Candidates; the first is the reference of the paired differences.
        seeds: Training seeds per objective.
        split: Split kind whose training and validation tasks are used.
        split_seed: Seed of the split (the benchmark's default, 0).
        val_tasks: Validation tasks scored, beyond the recipe's ``n_val`` that early
            stopping uses.
        episodes: Deterministic episodes per validation task.
        budget: ``"full"``, ``"small"`` or a fraction, as in the benchmark.
        out_dir: Report and cached mappings (``<objective>-seed<k>/``).
        workdir: Cache of bases and experts.
        workers: Processes for experts and for scoring.
        backend: ``"local"`` or ``"ray"``.
        train: Extra :class:`TrainConfig` settings for every candidate (``rl`` settings,
            which matter to objectives with an ``rl`` phase only; tiny budgets for tests).
        progress: Show progress bars.
    """

    family: str
    objectives: tuple[str, ...] = ("distill", "rl", "distill+rl")
    seeds: int = 3
    split: str = "interpolation"
    split_seed: int = 0
    val_tasks: int = 24
    episodes: int = 5
    budget: str = "full"
    out_dir: Path = Path("objectives-out")
    workdir: Path = Path("runs")
    workers: int = 2
    backend: str = "local"
    train: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self) -> None:
        get_family(self.family)
        budget_scale(self.budget)
        check_backend(self.backend)
        if not self.objectives:
            raise ConfigError("objectives must name at least one objective")
        for objective in self.objectives:
            parse_objective(objective)
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError("objectives must not repeat")
        if self.split not in SPLIT_KINDS:
            raise ConfigError(f"split must be one of {SPLIT_KINDS}, got {self.split!r}")
        for name in ("val_tasks", "seeds", "episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "workdir", Path(self.workdir))

    def train_config(self, objective: str, seed: int) -> TrainConfig:
        """One candidate's training, built as the benchmark builds its runs."""
        return run_train_config(self, seed=seed, objective=objective, split=self.split)


def val_seed(index: int) -> int:
    """Seed of the episodes on the ``index``-th validation task, the same for every mapping
    scored (and for any other policy paired with them)."""
    return 10_000 + index * 100


@torch_threads(1)  # one thread per job; the caller's count is given back
def _score_job(checkpoint: str, tasks: list[dict[str, float]], episodes: int) -> dict[str, Any]:
    """Worker: the mapping's zero-shot return and the default expert's on every task."""
    mapping = TrainedMapping.load(checkpoint)
    family, spec = mapping.family, mapping.spec

    def returns(params_of: Any) -> list[float]:
        # The same episode seeds on every task for every mapping: paired comparisons.
        return [
            evaluate_params(spec, params_of(t), family, t, episodes=episodes, seed=val_seed(i))
            for i, t in enumerate(tasks)
        ]

    return {
        "mapping": returns(mapping.predict),
        "default_expert": returns(lambda _t: mapping.base_params),
    }


def run_selection(config: SelectionConfig) -> SelectionResult:
    """Train (or reuse) every candidate, score all on the validation tasks, pick one."""
    family = get_family(config.family)
    recipe = config.train_config(config.objectives[0], 0).resolved_recipe()
    split = family.task_space.split(
        recipe.n_train,
        recipe.n_test,
        n_val=recipe.n_val + config.val_tasks,
        kind=config.split,
        seed=config.split_seed,
    )
    tasks = split.val[recipe.n_val :]  # past early stopping's tasks (see the module doc)
    early = family.task_space.split(
        recipe.n_train, recipe.n_test, n_val=recipe.n_val, kind=config.split, seed=config.split_seed
    ).val
    if any(t in early for t in tasks):
        raise RuntimeError("selection tasks overlap the early-stopping tasks")
    config.out_dir.mkdir(parents=True, exist_ok=True)
    runs: list[SelectionRun] = []
    for objective in config.objectives:
        for seed in range(config.seeds):
            run_dir = config.out_dir / f"{objective.replace('+', '-')}-seed{seed}"
            path, trained_now = mapping_for(config.train_config(objective, seed), run_dir)
            info = TrainedMapping.load(path).info
            runs.append(
                SelectionRun(
                    objective=objective,
                    seed=seed,
                    checkpoint=str(path),
                    env_steps=info["env_steps"],
                    train_seconds=info["seconds"] if trained_now else None,
                )
            )
    scores = run_jobs(
        _score_job,
        [(run.checkpoint, tasks, config.episodes) for run in runs],
        workers=config.workers,
        backend=config.backend,
    )
    for run, score in zip(runs, scores, strict=True):
        run.val_returns, run.default_expert_returns = score["mapping"], score["default_expert"]

    def by_seed(objective: str, key: str = "val_returns") -> list[list[float]]:
        return [getattr(r, key) for r in runs if r.objective == objective]

    reference = config.objectives[0]
    summary: dict[str, ObjectiveSummary] = {}
    for objective in config.objectives:
        steps = [r.env_steps for r in runs if r.objective == objective]
        paired = [
            list(np.subtract(mine, ref))
            for mine, ref in zip(by_seed(objective), by_seed(reference), strict=True)
        ]
        summary[objective] = ObjectiveSummary(
            val_return=bootstrap_ci(by_seed(objective)),
            minus_reference=bootstrap_ci(paired),
            default_expert=bootstrap_ci(by_seed(objective, "default_expert_returns")),
            env_steps=float(np.mean(steps)),
        )
    chosen = max(config.objectives, key=lambda o: summary[o].val_return.mean or -math.inf)
    result = SelectionResult(
        family=family.name,
        split=config.split,
        split_seed=config.split_seed,
        seeds=config.seeds,
        val_tasks=tasks,
        episodes=config.episodes,
        budget=config.budget,
        summary=summary,
        chosen=chosen,
        runs=runs,
    )
    result.table = _markdown(result)
    write_json(config.out_dir / "results.json", result.to_json())
    write_text(config.out_dir / "results.md", result.table + "\n")
    result.report = str(config.out_dir / "results.md")
    return result


def _markdown(result: SelectionResult) -> str:
    reference = result.reference
    lines = [
        f"Family {result.family}, {result.split} split (split seed "
        f"{result.split_seed}), {result.seeds} seed(s) per objective, "
        f"{len(result.val_tasks)} validation tasks x {result.episodes} deterministic "
        "episodes; zero-shot return, mean [95% two-level bootstrap interval]. Test tasks "
        "are not used.",
        "",
        f"| objective | env steps (mean) | validation return | minus `{reference}`, paired |",
        "|---|---|---|---|",
    ]
    for objective, s in result.summary.items():
        lines.append(
            f"| `{objective}` | {s.env_steps / 1e6:.2f}M | "
            f"{s.val_return.format(digits=1, undefined='-')} | "
            f"{s.minus_reference.format(digits=1, sign=True, undefined='-')} |"
        )
    expert = result.summary[reference].default_expert
    lines += [
        "",
        f"Default-task expert on the same tasks (seeds' bases): "
        f"{expert.format(digits=1, undefined='-')}.",
        f"Chosen: `{result.chosen}` (highest mean validation return).",
    ]
    return "\n".join(lines)
