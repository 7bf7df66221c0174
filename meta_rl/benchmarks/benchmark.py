"""``meta-rl benchmark FAMILY``: the whole protocol over seeds and both kinds of split.

For every split kind and seed, a mapping is trained (or reused from ``out_dir``), then
scored with its baselines on that split's test tasks by :func:`score_mapping`. Scores of
all seeds are pooled per split kind; the confidence interval is a two-level bootstrap
(seeds, then tasks within a seed), so it widens when seeds disagree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from meta_rl.benchmarks.results import (
    BenchmarkResult,
    CurvePoint,
    Interval,
    RunRecord,
    ScoreResult,
    SplitSummary,
    bootstrap_ci,
)
from meta_rl.benchmarks.score import (
    ScoreConfig,
    budget_scale,
    check_budgets,
    check_context_sac,
    oracle_note,
    score_mapping,
)
from meta_rl.envs import get_family
from meta_rl.envs.task_space import SPLIT_KINDS
from meta_rl.errors import ConfigError
from meta_rl.infra.files import write_json, write_text
from meta_rl.infra.parallel import check_backend, run_jobs
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.critic import CRITIC_OBJECTIVES
from meta_rl.training.config import TrainConfig, settings_key
from meta_rl.training.inference import InferenceConfig, train_inference
from meta_rl.training.trainer import train

BASELINES = ("context", "maml", "recurrent", "context-sac")
"""Every trained baseline the benchmark offers."""
DEFAULT_BASELINES = ("context", "maml", "recurrent")
"""Those it trains unless told: ``context-sac`` (Box actions only, and SAC's gradient step
per env step makes it the longest) is asked for by name."""


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """Settings of ``meta-rl benchmark FAMILY``.

    Attributes:
        family: Family name.
        budget: ``"small"``, ``"full"`` or a fraction (see :func:`budget_scale`); it scales
            the mapping's training and so the baselines' equal env steps.
        oracle_budget: The oracle's budget (default: full; see :class:`ScoreConfig`).
        sac_budget: The oracle's SAC run's own budget (see :class:`ScoreConfig`).
        seeds: Training seeds per split kind (0, 1, ...). They vary the base, the experts,
            the mapping, the baselines and the evaluations; the tasks stay those of
            ``split_seed``, so every seed is scored on the same held-out tasks against one
            oracle run per task (cached in ``<split>-oracles.json``).
        split_seed: Seed of the train/validation/test split of every run.
        splits: Split kinds to run.
        out_dir: Report folder; per run a sub-folder ``<split>-seed<k>`` with its mapping,
            its own report, and the caches of its oracle runs and baselines.
        workdir: Cache of bases and experts (shared with ``meta-rl train``).
        workers: Processes for experts and oracles.
        finetune_steps: Points of the adaptation curves.
        finetune_algos: Fine-tunes curved from the prediction and from the default-task
            expert (default: the recipe's ``finetune_algo``, then ``ppo``).
        episodes: Evaluation episodes per task and point (default: the recipe's).
        baselines: Which of :data:`BASELINES` (``"context"``, ``"maml"``, ``"recurrent"``,
            ``"context-sac"``) to train and score; default :data:`DEFAULT_BASELINES`.
        train: Extra :class:`TrainConfig` settings (objective, mapping shape, tiny budgets).
        backend: ``"local"`` or ``"ray"`` (each run, and the jobs within it, as Ray tasks;
            see :mod:`meta_rl.infra.parallel`).
        baseline_steps: Env steps of the context and MAML baselines (default: each run's
            mapping's own training steps, the protocol's equal budget; set it only for smoke
            tests).
        infer_steps: Probe steps of the "task inferred" column (default: 200); each run's
            mapping gets an inference model for it (cached in its checkpoint); 0: no column.
        progress: Show progress bars.
    """

    family: str
    budget: str = "full"
    oracle_budget: str | None = None
    sac_budget: str | None = None
    seeds: int = 3
    split_seed: int = 0
    splits: tuple[str, ...] = SPLIT_KINDS
    out_dir: Path = Path("benchmark-out")
    workdir: Path = Path("runs")
    workers: int = 2
    finetune_steps: tuple[int, ...] = (0, 1000, 2000, 5000, 10000)
    finetune_algos: tuple[str, ...] | None = None
    episodes: int | None = None
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    train: dict[str, Any] = field(default_factory=dict)
    baseline_steps: int | None = None
    backend: str = "local"
    progress: bool = True
    infer_steps: int | None = None

    def __post_init__(self) -> None:
        get_family(self.family)
        if self.infer_steps is not None and self.infer_steps < 0:
            raise ConfigError(f"infer_steps must be 0 or more, got {self.infer_steps}")
        check_budgets(self.budget, self.oracle_budget, self.sac_budget)
        check_backend(self.backend)
        if self.seeds < 1:
            raise ConfigError("seeds must be at least 1")
        if not self.splits or not set(self.splits) <= set(SPLIT_KINDS):
            raise ConfigError(f"splits must be some of {SPLIT_KINDS}, got {self.splits!r}")
        if 0 not in self.finetune_steps:
            raise ConfigError("finetune_steps must include 0 (the zero-shot point)")
        if not set(self.baselines) <= set(BASELINES):
            raise ConfigError(f"baselines must be some of {BASELINES}, got {self.baselines!r}")
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "workdir", Path(self.workdir))

    def inference_config(self) -> InferenceConfig:
        """The inference models' training: probes up to ``infer_steps`` (a smoke run's
        small and short)."""
        if self.budget == "small":
            steps = self.infer_steps or 40
            return InferenceConfig(
                probe_steps=steps, min_steps=min(10, steps), hidden=(32,), tasks=32,
                probes_per_task=1, updates=100,
            )  # fmt: skip
        steps = self.infer_steps or InferenceConfig().probe_steps
        return InferenceConfig(probe_steps=steps, min_steps=min(20, steps))

    def train_config(self, split: str, seed: int) -> TrainConfig:
        """The mapping's training for one run (see :func:`run_train_config`)."""
        return run_train_config(self, split=split, seed=seed)


def run_train_config(config: Any, *, seed: int, **settings: Any) -> TrainConfig:
    """The mapping's training for one run of a multi-seed command (the benchmark, the
    objective selection): ``config``'s family, budget factor, split seed, caches and
    workers, for ``small`` a smoke-sized pipeline (8 training tasks, 2 rounds), then
    ``settings`` and ``config.train`` on top."""
    # A smoke run's base is too short to beat random play: it goes on regardless.
    smoke = {"n_train": 8, "rounds": 2, "keep_going": True} if config.budget == "small" else {}
    return TrainConfig(
        **{
            "backend": config.backend,
            "family": config.family,
            "seed": seed,
            "split_seed": config.split_seed,
            "workdir": config.workdir,
            "workers": config.workers,
            "budget_scale": budget_scale(config.budget),
            "progress": config.progress,
            **smoke,
            **settings,
            **config.train,
        }
    )


def _lacks_critic(path: Path, config: TrainConfig) -> bool:
    """Whether a cached mapping of an off-policy objective predates checkpoints keeping
    the critic (an off-policy fine-tune starts from it, so it is retrained)."""
    off_policy = set(CRITIC_OBJECTIVES) & set(config.objective.split("+"))
    return bool(off_policy) and TrainedMapping.load(path).critic is None


def mapping_for(config: TrainConfig, run_dir: Path) -> tuple[Path, bool]:
    """The run's checkpoint, trained unless one from the same settings is already there
    (with its critic, for an off-policy objective).

    Returns:
        The path and whether it was trained now.
    """
    path = run_dir / f"mapping-{settings_key(config)[:12]}.safetensors"
    if path.exists() and not _lacks_critic(path, config):
        return path, False
    trained, _ = train(config)
    trained.save(path)
    return path, True


def with_inference(path: Path, seed: int, config: InferenceConfig | None = None) -> float:
    """Give the cached mapping at ``path`` an inference model where it has none, or one
    trained for other probe lengths than ``config``'s (trained with ``seed``; the file is
    rewritten atomically, its network unchanged). Returns the seconds it took (0 where the
    mapping had a fitting one)."""
    trained = TrainedMapping.load(path)
    wanted = config or InferenceConfig()
    have = trained.inference
    if have is not None and (have.probe_steps, have.min_steps) == (
        wanted.probe_steps,
        wanted.min_steps,
    ):
        return 0.0
    trained.inference = train_inference(trained, config, seed=seed)
    trained.save(path)
    return float(trained.inference.report["seconds"])


def _curve_stats(results: Sequence[ScoreResult], key: str | Any) -> list[CurvePoint]:
    """Per point of a score curve (attribute ``key`` of every row, or ``key(row)``): its
    env steps (the mean over the rows: an off-policy warm start's steps move them) and
    pooled stat."""
    get = key if callable(key) else (lambda row: getattr(row, key))
    rows = [r for res in results for r in res.rows]
    points = [round(float(np.mean([get(r)[i][0] for r in rows]))) for i in range(len(get(rows[0])))]
    out = []
    for i, steps in enumerate(points):
        if i and steps == points[i - 1]:  # checkpoints inside one rollout: one point
            continue
        stat = bootstrap_ci([[get(r)[i][1] for r in res.rows] for res in results])
        out.append(CurvePoint(steps, stat))
    return out


def _summarise_split(results: Sequence[ScoreResult]) -> SplitSummary:
    def pooled(key: str) -> Interval:
        return bootstrap_ci([[getattr(r, key) for r in res.rows] for res in results])

    rows = [r for res in results for r in res.rows]
    first = rows[0]
    summary = SplitSummary(
        mapping=_curve_stats(results, "fine_tune_scores"),
        default_expert=_curve_stats(results, "default_fine_tune_scores"),
        ppo_scratch=_curve_stats(results, "ppo_scratch_scores"),
        steps_to_09={m: [r.steps_to_09[m] for r in rows] for m in first.steps_to_09},
    )
    if first.finetunes:
        summary.finetunes = {
            k: _curve_stats(results, lambda row, k=k: row.finetune_scores[k])
            for k in first.finetunes
        }
        summary.steps_to_level = {
            level: {k: [r.steps_to_level[level][k] for r in rows] for k in first.finetunes}
            for level in first.steps_to_level
        }
    if first.context_score is not None:
        summary.context = pooled("context_score")
        # Each run's context policy gets that run's pipeline steps: one figure per run.
        summary.context_env_steps = [res.rows[0].context_steps for res in results]
    if first.recurrent is not None:
        summary.recurrent = pooled("recurrent_score")
        summary.recurrent_env_steps = [res.rows[0].recurrent_steps for res in results]
    if first.context_sac is not None:
        summary.context_sac = pooled("context_sac_score")
        summary.context_sac_env_steps = [res.rows[0].context_sac_steps for res in results]
    if first.inferred is not None:
        summary.inferred = pooled("inferred_score")
        summary.inferred_probe_steps = first.inferred_probe_steps
    if first.maml_after_score is not None:
        summary.maml_before = pooled("maml_before_score")
        summary.maml_after = pooled("maml_after_score")
        # The inner step's episodes end when they end: its env steps differ per task.
        steps = [r.maml_adapt_steps for r in rows]
        summary.maml_adapt_steps = round(sum(steps) / len(steps))
    summary.targets = targets(summary, [r.ppo_scratch_curve[-1][0] for r in rows])
    return summary


def targets(s: SplitSummary, ppo_budgets: Sequence[int]) -> dict[str, Any]:
    """The targets, measured: each with the figures it is judged on.

    A task meets the 20-times target when the mapping reaches 0.9 of the oracle within its
    curve and PPO from scratch needs at least 20 times as many steps; a PPO run that never
    reached 0.9 counts only when its whole budget is already 20 times the mapping's.
    """
    zero = s.mapping[0].score if s.mapping[0].steps == 0 else None
    out: dict[str, Any] = {}
    if s.context is not None and zero and zero.mean is not None and s.context.mean is not None:
        lead = zero.mean - s.context.mean
        out["zero_shot_minus_context"] = {"value": lead, "target": 0.1, "met": lead >= 0.1}
    sac = s.context_sac
    if sac is not None and zero and zero.mean is not None and sac.mean is not None:
        lead = zero.mean - sac.mean
        out["zero_shot_minus_context_sac"] = {"value": lead, "target": 0.0, "met": lead > 0}
    mapping_steps = s.steps_to_09["mapping_fine_tune"]
    ppo_steps = s.steps_to_09["ppo_scratch"]
    met = [
        m is not None and (p >= 20 * m and p > 0 if p is not None else budget >= 20 * m)
        for m, p, budget in zip(mapping_steps, ppo_steps, ppo_budgets, strict=True)
    ]
    out["20x_fewer_steps_than_ppo"] = {
        "tasks_met": int(sum(met)),
        "tasks": len(met),
        "met": bool(met) and all(met),
    }
    out.update(finetune_targets(s))
    if s.maml_after is not None and s.maml_after.mean is not None:
        budget = s.maml_adapt_steps or 0
        within = [p for p in s.mapping if p.steps <= budget]
        point = within[-1] if within else None
        if point is not None and point.score.mean is not None:
            lead = point.score.mean - s.maml_after.mean
            out["ahead_of_maml"] = {
                "mapping_steps": point.steps,
                "maml_steps": budget,
                "value": lead,
                "met": lead > 0,
            }
    return out


def _at(curve: Sequence[CurvePoint], index: int) -> CurvePoint | None:
    return curve[index] if index < len(curve) else None


def finetune_targets(s: SplitSummary) -> dict[str, Any]:
    """The fine-tune's targets, measured on the default fine-tune from the prediction (the
    first ``prediction:`` curve): its score at each budget and its lift over zero-shot;
    and, on each task that starts below 0.9 of the oracle, whether it reaches 0.9 within
    1/20 of the env steps SAC from scratch needs (a SAC run that never reached 0.9 counts
    where its whole budget is already 20 times the fine-tune's)."""
    keys = [k for k in s.finetunes if k.startswith("prediction:")]
    if not keys:
        return {}
    key = keys[0]
    curve = s.finetunes[key]
    zero = s.mapping[0].score.mean if s.mapping and s.mapping[0].steps == 0 else None
    out: dict[str, Any] = {
        "finetune": {
            "curve": key,
            "points": {
                str(p.steps): {
                    "score": p.score.mean,
                    "lift": None if zero is None or p.score.mean is None else p.score.mean - zero,
                }
                for p in curve
            },
        }
    }
    sac = s.steps_to_level.get("0.9", {}).get("scratch:sac")
    if sac is not None:
        own = s.steps_to_level["0.9"][key]
        sac_curve = s.finetunes.get("scratch:sac") or []
        sac_budget = sac_curve[-1].steps if sac_curve else 0
        zero_09 = s.steps_to_09.get("mapping_fine_tune", [])
        verdicts = []
        for i, (m, q) in enumerate(zip(own, sac, strict=True)):
            if i < len(zero_09) and zero_09[i] == 0:
                continue  # starts at 0.9 or above: not judged
            ok = m is not None and (q >= 20 * m if q is not None else sac_budget >= 20 * m)
            verdicts.append(ok)
        out["20x_fewer_steps_than_sac"] = {
            "tasks_met": int(sum(verdicts)),
            "tasks": len(verdicts),
            "met": bool(verdicts) and all(verdicts),
        }
    return out


def _run_dir(config: BenchmarkConfig, split: str, seed: int) -> Path:
    run_dir = config.out_dir / f"{split}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _one_run(
    config: BenchmarkConfig, split: str, seed: int, checkpoint: Path, trained_now: bool
) -> tuple[RunRecord, ScoreResult]:
    """One (split, seed) run: its mapping, trained before, scored by ``score_mapping``."""
    run_dir = _run_dir(config, split, seed)
    info = TrainedMapping.load(checkpoint).info
    result = score_mapping(
        ScoreConfig(
            checkpoint=str(checkpoint),
            out_dir=run_dir,
            budget=config.budget,
            oracle_budget=config.oracle_budget,
            sac_budget=config.sac_budget,
            seed=seed,
            oracle_seed=config.split_seed,
            oracle_cache=config.out_dir / f"{split}-oracles.json",
            workers=config.workers,
            finetune_steps=config.finetune_steps,
            finetune_algos=config.finetune_algos,
            episodes=config.episodes,
            context="context" in config.baselines,
            maml="maml" in config.baselines,
            recurrent="recurrent" in config.baselines,
            context_sac="context-sac" in config.baselines,
            baseline_steps=config.baseline_steps or int(info["env_steps"]),
            backend=config.backend,
            progress=config.progress,
            infer_steps=config.infer_steps,
        )
    )
    run = RunRecord(
        split=split,
        seed=seed,
        checkpoint=str(checkpoint),
        report=result.report,
        train_env_steps=info["env_steps"],
        train_seconds=info["seconds"] if trained_now else None,
    )
    return run, result


def run_benchmark(config: BenchmarkConfig) -> BenchmarkResult:
    """Train and score every (split, seed) run, pool them, write the report and plots."""
    start = time.perf_counter()
    family = get_family(config.family)
    if "context-sac" in config.baselines:  # before any mapping trains
        env = family.make()
        try:
            kind = "box" if isinstance(env.action_space, gym.spaces.Box) else "discrete"
        finally:
            env.close()
        check_context_sac(family.name, kind)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    pairs = [(split, seed) for split in config.splits for seed in range(config.seeds)]
    # The mappings train here, one after the other: they share the work folder (its base
    # and experts), which one run holds at a time; each spreads its experts over the
    # workers or Ray. Then, locally, the runs are scored one after the other (each spreads
    # its own jobs over the workers); on Ray each run is a task of its own, and its jobs are
    # tasks too. The seeds of a split share its oracle cache, so seed 0's runs go first and
    # fill it; the other seeds then find every oracle run there and never write the file at
    # the same time.
    mappings = {
        pair: mapping_for(config.train_config(*pair), _run_dir(config, *pair)) for pair in pairs
    }
    if config.infer_steps != 0:  # the "task inferred" column: an encoder for each mapping
        for (_, seed), (path, _) in mappings.items():
            with_inference(path, seed, config.inference_config())
    first = [pair for pair in pairs if pair[1] == 0]
    rest = [pair for pair in pairs if pair[1] != 0]
    done_by_pair: dict[tuple[str, int], tuple[RunRecord, ScoreResult]] = {}
    for group in (first, rest):
        results = run_jobs(
            _one_run,
            [(config, split, seed, *mappings[split, seed]) for split, seed in group],
            workers=0,
            backend=config.backend,
        )
        done_by_pair.update(zip(group, results, strict=True))
    done = [done_by_pair[pair] for pair in pairs]
    runs = [run for run, _ in done]
    per_split: dict[str, list[ScoreResult]] = {}
    for (split, _), (_, result) in zip(pairs, done, strict=True):
        per_split.setdefault(split, []).append(result)
    one = per_split[config.splits[0]][0]
    out = BenchmarkResult(
        family=family.name,
        budget=config.budget,
        oracle_budget=one.oracle_budget,
        sac_budget=one.sac_budget,
        seeds=config.seeds,
        seconds=round(time.perf_counter() - start, 1),
        episodes=one.episodes,
        objective=one.objective,
        runs=runs,
        summary={split: _summarise_split(results) for split, results in per_split.items()},
        tasks={
            split: [replace(row, seed=i) for i, res in enumerate(results) for row in res.rows]
            for split, results in per_split.items()
        },
    )
    out.table = _markdown(out)
    write_json(config.out_dir / "results.json", out.to_json())
    write_text(config.out_dir / "results.md", out.table + "\n")
    from meta_rl.benchmarks.plots import descriptor_plot, finetune_curves_plot, score_curves_plot

    summary_json = {split: s.to_json() for split, s in out.summary.items()}
    score_curves_plot(summary_json, config.out_dir / "curves.png", title=f"{family.name}")
    if any(s.finetunes for s in out.summary.values()):
        finetune_curves_plot(summary_json, config.out_dir / "finetune.png", title=family.name)
    series = {}
    for split, rows in out.tasks.items():
        series[f"mapping, {split}"] = [(r.task, r.zero_shot_score) for r in rows]
        series[f"default expert, {split}"] = [(r.task, r.default_expert_score) for r in rows]
    descriptor_plot(
        series,
        family.task_space,
        config.out_dir / "zero_shot_by_descriptor.png",
        title=f"{family.name}: zero-shot score of each held-out task",
        hollow=[label for label in series if label.startswith("default")],
    )
    out.report = str(config.out_dir / "results.md")
    return out


def finetune_section(s: SplitSummary) -> list[str]:
    """The fine-tune curves of one split, in Markdown: every fine-tune's score by env
    steps (warm starts included), then each one's env steps to 0.9 and 0.95 per task."""
    lines = [
        "",
        "Fine-tunes (`start:algorithm`; `scratch:sac` is the oracle's SAC run, "
        "`scratch:ppo` its PPO run), normalised score by env steps:",
        "",
        "| fine-tune | points (env steps: score) |",
        "|---|---|",
    ]
    for key, curve in s.finetunes.items():
        cells = ", ".join(f"{p.steps}: {p.score.format()}" for p in curve)
        lines.append(f"| {key} | {cells} |")
    for level, per in s.steps_to_level.items():
        lines += ["", f"Env steps to {level} of the oracle, per task (`-`: not within the curve):"]
        for key, values in per.items():
            shown = ", ".join("-" if v is None else str(v) for v in values)
            lines.append(f"- {key}: {shown}")
    return lines


def _markdown(result: BenchmarkResult) -> str:
    lines = [
        f"Family {result.family}, objective `{result.objective}`, budget "
        f"{result.budget}{oracle_note(result.budget, result.oracle_budget, result.sac_budget)}, "
        f"{result.seeds} seed(s) per split, "
        f"{result.episodes} "
        "deterministic episodes per task and point. Normalised score (0 random, 1 oracle): "
        "mean over every seed's test tasks [95% two-level bootstrap interval].",
    ]
    for split, s in result.summary.items():
        lines += ["", f"### {split} split", "", "| method | env steps | score |", "|---|---|---|"]
        for name, curve in (
            ("mapping, fine-tuned", s.mapping),
            ("default-task expert, fine-tuned", s.default_expert),
            ("PPO from scratch", s.ppo_scratch),
        ):
            for point in curve:
                lines.append(f"| {name} | {point.steps} | {point.score.format()} |")
        if s.inferred is not None:
            lines.append(
                f"| mapping, zero-shot, task inferred from a probe | {s.inferred_probe_steps} | "
                f"{s.inferred.format()} |"
            )
        if s.recurrent is not None:
            lines.append(
                f"| recurrent PPO, task hidden (trained for "
                f"{' / '.join(str(b) for b in s.recurrent_env_steps)}) | 0 | "
                f"{s.recurrent.format()} |"
            )
        if s.context is not None:
            lines.append(
                f"| context-conditioned PPO (trained for "
                f"{' / '.join(str(b) for b in s.context_env_steps)}) | 0 | "
                f"{s.context.format()} |"
            )
        if s.context_sac is not None:
            lines.append(
                f"| context-conditioned SAC (trained for "
                f"{' / '.join(str(b) for b in s.context_sac_env_steps)}) | 0 | "
                f"{s.context_sac.format()} |"
            )
        if s.maml_after is not None and s.maml_before is not None:
            lines.append(f"| MAML, before adaptation | 0 | {s.maml_before.format()} |")
            lines.append(
                f"| MAML + one inner step (mean env steps) | {s.maml_adapt_steps} | "
                f"{s.maml_after.format()} |"
            )
        lines += ["", "Targets:"]
        t = s.targets
        if "zero_shot_minus_context" in t:
            v = t["zero_shot_minus_context"]
            lines.append(
                f"- mapping zero-shot minus context-conditioned PPO: {v['value']:+.3f} "
                f"(target +0.1: {'met' if v['met'] else 'missed'})"
            )
        if "zero_shot_minus_context_sac" in t:
            v = t["zero_shot_minus_context_sac"]
            lines.append(
                f"- mapping zero-shot minus context-conditioned SAC: {v['value']:+.3f} "
                f"(target: ahead, {'met' if v['met'] else 'missed'})"
            )
        v = t["20x_fewer_steps_than_ppo"]
        lines.append(
            f"- 0.9 of the oracle in at most 1/20 of PPO-from-scratch's env steps: "
            f"{v['tasks_met']} of {v['tasks']} tasks"
        )
        if "ahead_of_maml" in t:
            v = t["ahead_of_maml"]
            lines.append(
                f"- mapping after {v['mapping_steps']} steps minus MAML after {v['maml_steps']}: "
                f"{v['value']:+.3f} ({'met' if v['met'] else 'missed'})"
            )
        if "20x_fewer_steps_than_sac" in t:
            v = t["20x_fewer_steps_than_sac"]
            lines.append(
                f"- the default fine-tune reaches 0.9 of the oracle in at most 1/20 of SAC-from-"
                f"scratch's env steps: {v['tasks_met']} of {v['tasks']} tasks that start below 0.9"
            )
        lines += ["", "Env steps to 0.9 of the oracle, per task (`-`: not within the curve):"]
        for method, values in s.steps_to_09.items():
            shown = ", ".join("-" if v is None else str(v) for v in values)
            lines.append(f"- {method.replace('_', ' ')}: {shown}")
        if s.finetunes:
            lines += finetune_section(s)
    lines += ["", "Runs:", ""]
    for run in result.runs:
        lines.append(
            f"- {run.split} seed {run.seed}: {run.train_env_steps} training env steps, "
            f"report `{run.report}`"
        )
    if result.seconds is not None:
        lines.append(
            f"\nWall clock of this command: {result.seconds / 60:.1f} min "
            "(work found in the caches is not redone, so a rerun takes less)."
        )
    return "\n".join(lines)
