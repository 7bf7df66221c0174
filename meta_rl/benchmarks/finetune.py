"""Fine-tune curves, and ``meta-rl select-finetune FAMILY``: the fine-tune chosen on
validation tasks.

A fine-tune curve is the deterministic return of an SB3 model after each of a few env-step
budgets: the model from :func:`~meta_rl.agents.adapt` (the prediction), from
:func:`~meta_rl.agents.base_policy` (the default-task expert), or SB3's SAC from scratch.
An off-policy warm start's own env steps (``model.warm_steps``) count in every point.

The selection scores every candidate fine-tune (an algorithm, with settings on top of the
recipe's) on validation tasks past those that early stopping used (as ``meta-rl
select-objective`` draws them); test tasks are never touched. A candidate is *safe* when no
point of its mean curve falls below the mean zero-shot return by more than the noise (twice
the standard error of the per-task differences). The safe candidate with the highest mean
return at the last point wins; the family's recipe records it (``finetune_algo`` and its
settings) by hand, as the objective's choice is recorded.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meta_rl.envs import Task, get_family
from meta_rl.errors import ConfigError
from meta_rl.evaluation import ParamsPolicy, learning_curve, run_episodes
from meta_rl.infra.files import write_json, write_text
from meta_rl.infra.keys import cache_key
from meta_rl.infra.parallel import call_on_one_thread, run_jobs
from meta_rl.infra.sb3 import OFF_POLICY_ALGOS
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.training.recipes import Recipe

Curve = list[tuple[int, float]]
STARTS = ("prediction", "expert")
"""Where a fine-tune starts: the mapping's prediction, or its default-task expert."""


def parse_candidate(text: str) -> tuple[str, str, dict[str, Any]]:
    """``"sac"`` or ``"sac:learning_rate=3e-4,gradient_steps=2"``: (name, algo, settings).

    Values are read as JSON where they parse (numbers, ``true``), else kept as strings
    (``ent_coef=auto_0.01``).

    Raises:
        ConfigError: a setting without ``=``.
    """
    algo, _, rest = text.partition(":")
    settings: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"a candidate's settings are key=value pairs, got {item!r}")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[key.strip()] = value.strip()
    return text, algo.strip().lower(), settings


def finetune_job(
    checkpoint: str,
    task: Task,
    start: str,
    algo: str,
    settings: Mapping[str, Any],
    points: Sequence[int],
    episodes: int,
    seed: int,
) -> Curve:
    """Worker: the curve of one fine-tune of the mapping at ``checkpoint`` on ``task``,
    starting from ``start`` (:data:`STARTS`), at ``points`` env steps (warm start
    included)."""
    from meta_rl.agents import adapt, base_policy

    mapping = TrainedMapping.load(checkpoint)
    make = adapt if start == "prediction" else base_policy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make(mapping, task=task, algo=algo, seed=seed, threads=None, **settings)
        curve = learning_curve(
            model,
            mapping.spec,
            mapping.family,
            task,
            checkpoints=points,
            episodes=episodes,
            seed=seed + 1,
        )
    return [(int(s), float(r)) for s, r in curve]


def scratch_sac_job(
    family_name: str,
    task: Task,
    settings: Mapping[str, Any],
    points: Sequence[int],
    episodes: int,
    seed: int,
    on_point: Callable[[int, float], None] | None = None,
) -> Curve:
    """Worker: SB3's SAC from scratch on ``task`` (its default ``MlpPolicy``, ``settings``
    on top), evaluated at ``points`` env steps; point 0 is its untrained policy.
    ``on_point(steps, mean_return)`` is called as each point is measured."""
    from stable_baselines3 import SAC

    from meta_rl.infra.sb3 import silence

    family = get_family(family_name)
    env = family.make(task=task)
    model = silence(SAC("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings))
    eval_env = family.make(task=task)
    curve: Curve = []
    try:
        done = 0
        for point in points:
            if point > done:
                model.learn(point - done, reset_num_timesteps=done == 0, progress_bar=False)
                done = int(model.num_timesteps)

            def act(obs: np.ndarray) -> np.ndarray:
                return model.predict(obs, deterministic=True)[0]

            returns = run_episodes(eval_env, act, episodes=episodes, seed=seed + 1)
            curve.append((done, float(np.mean(returns))))
            if on_point is not None:
                on_point(*curve[-1])
    finally:
        env.close()
        eval_env.close()
    return curve


def zero_shot_job(checkpoint: str, task: Task, episodes: int, seed: int) -> float:
    """Worker: the prediction's mean return on ``task`` (the fine-tunes' common start)."""
    mapping = TrainedMapping.load(checkpoint)
    env = mapping.family.make(task=task, extrapolate=True)
    try:
        policy = ParamsPolicy(
            mapping.spec, mapping.predict(task, extrapolate=True), env.action_space
        )
        return float(np.mean(run_episodes(env, policy, episodes=episodes, seed=seed + 1)))
    finally:
        env.close()


def cached_jobs(jobs: list[tuple[str, Any, tuple]], cache_path: Path, workers: int) -> list[Any]:
    """Run ``(key, fn, args)`` jobs whose key is not in the JSON cache at ``cache_path``;
    each result is written there as it arrives, so an interrupted run resumes."""
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    todo = [i for i, (key, _, _) in enumerate(jobs) if key not in cache]

    def save(index: int, result: Any) -> None:
        cache[jobs[todo[index]][0]] = result
        write_json(cache_path, cache)

    if todo:
        run_jobs(
            call_on_one_thread,
            [(jobs[i][1], jobs[i][2]) for i in todo],
            workers=workers,
            on_done=save,
        )
    return [cache[key] for key, _, _ in jobs]


@dataclass(frozen=True, kw_only=True)
class FinetuneSelectionConfig:
    """Settings of ``meta-rl select-finetune FAMILY``.

    Attributes:
        checkpoint: The mapping whose predictions are fine-tuned (path or shipped name).
        candidates: Candidate fine-tunes (:func:`parse_candidate`).
        val_tasks: Validation tasks, past the ``n_val`` that early stopping used.
        points: Env-step budgets of the curves; 0 is zero-shot.
        episodes: Deterministic episodes per point.
        seed: Seed of the fine-tunes and evaluations.
        out_dir: Report and cache (``cache.json``: a rerun only reports; the report's
            ``seconds`` is the wall clock of the last run that computed curves).
        workers: Processes.
    """

    checkpoint: str
    candidates: tuple[str, ...] = ("ppo", "a2c", "sac", "td3")
    val_tasks: int = 6
    points: tuple[int, ...] = (0, 1000, 2000, 5000)
    episodes: int = 10
    seed: int = 0
    out_dir: Path = Path("finetune-out")
    workers: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if not self.candidates:
            raise ConfigError("give at least one candidate fine-tune")
        if self.val_tasks < 2:
            raise ConfigError("val_tasks must be at least 2 (the noise needs two)")
        points = list(self.points)
        if points != sorted(set(points)) or points[0] != 0:
            raise ConfigError("points must be increasing whole numbers starting at 0")


@dataclass
class CandidateResult:
    """One candidate over the validation tasks."""

    name: str
    algo: str
    settings: dict[str, Any]
    curves: list[Curve]
    mean: list[tuple[int, float]] = field(default_factory=list)
    worst_drop: float = 0.0
    noise: float = 0.0

    @property
    def safe(self) -> bool:
        return self.worst_drop <= self.noise

    @property
    def final(self) -> float:
        return self.mean[-1][1]


def _recipe_settings(recipe: Recipe, algo: str) -> dict[str, Any]:
    """The settings a fine-tune of ``algo`` takes from ``recipe`` before a candidate's."""
    if algo in OFF_POLICY_ALGOS:
        return recipe.off_policy_finetune(algo)
    return dict(recipe.finetune)


def _paired_noise(diffs: np.ndarray) -> float:
    """Twice the standard error of the mean of per-task differences."""
    return 2 * float(diffs.std(ddof=1)) / math.sqrt(len(diffs))


def choose_winner(
    scored: Sequence[CandidateResult], *, incumbent: str | None
) -> tuple[CandidateResult, str]:
    """The winner and why: the safe candidate with the best last point, unless the
    recipe's own fine-tune (the candidate named ``incumbent``, a bare algorithm, which
    runs the recipe's settings) is safe too and the leader's lead over it at the last
    point, paired by task, is within the noise (twice its standard error): a choice
    already made is not replaced on noise."""
    safe = [c for c in scored if c.safe] or list(scored)
    best = max(safe, key=lambda c: c.final)
    own = next((c for c in scored if c.algo == incumbent and not c.settings and c.safe), None)
    if own is None or own is best:
        return best, "the safe candidate with the best last point"
    diffs = np.array([b[-1][1] - o[-1][1] for b, o in zip(best.curves, own.curves, strict=True)])
    lead, noise = float(diffs.mean()), _paired_noise(diffs)
    if lead <= noise:
        return own, (
            f"the recipe's own fine-tune; `{best.name}` leads it at the last point by "
            f"{lead:.1f}, within the noise ({noise:.1f})"
        )
    return best, (
        f"the safe candidate with the best last point, {lead:.1f} ahead of the recipe's "
        f"own `{own.name}` (noise {noise:.1f})"
    )


def selection_tasks(mapping: TrainedMapping, n: int) -> list[Task]:
    """The ``n`` validation tasks ``select-finetune --val-tasks n`` scores: drawn from
    ``mapping``'s split with ``n_val + n`` validation tasks, past the ``n_val`` that its
    early stopping used. On an interpolation split fewer are the first of more; an
    extrapolation split draws its held-out feature anew for each count."""
    recipe, info = mapping.recipe, mapping.info
    split = mapping.task_space.split(
        recipe.n_train,
        recipe.n_test,
        n_val=recipe.n_val + n,
        kind=info.get("split_kind", "interpolation"),
        seed=int(info.get("split_seed", 0)),
    )
    return split.val[recipe.n_val :]


def run_finetune_selection(config: FinetuneSelectionConfig) -> dict[str, Any]:
    """Score every candidate on validation tasks, pick the winner, write the report."""
    from meta_rl.agents.adapt import check_algo

    mapping = TrainedMapping.load(config.checkpoint)
    candidates = [parse_candidate(c) for c in config.candidates]
    for _, algo, _ in candidates:
        check_algo(mapping, algo)
    recipe, info = mapping.recipe, mapping.info
    tasks = selection_tasks(mapping, config.val_tasks)
    if any(t in (info.get("split") or {}).get("val", []) for t in tasks):
        raise RuntimeError("selection tasks overlap the early-stopping tasks")
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path = str(config.checkpoint)
    started = time.time()
    key = {"checkpoint": path, "episodes": config.episodes, "seed": config.seed}
    jobs: list[tuple[str, Any, tuple]] = [
        (
            "zero-shot-" + cache_key({**key, "task": t}),
            zero_shot_job,
            (path, t, config.episodes, config.seed),
        )
        for t in tasks
    ]
    for name, algo, settings in candidates:
        for t in tasks:
            job_key = cache_key(
                {
                    **key,
                    "task": t,
                    "algo": algo,
                    # what the fine-tune runs: the recipe's settings under the candidate's
                    "settings": {**_recipe_settings(recipe, algo), **settings},
                    "points": list(config.points),
                }
            )
            args = (
                path,
                t,
                "prediction",
                algo,
                settings,
                config.points,
                config.episodes,
                config.seed,
            )
            jobs.append((f"{name}-{job_key}", finetune_job, args))
    cache_path, report_path = config.out_dir / "cache.json", config.out_dir / "results.json"
    cached = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    computes = any(job_key not in cached for job_key, _, _ in jobs)
    results = cached_jobs(jobs, cache_path, config.workers)
    # The wall clock of the last run that computed curves: a rerun that finds them all
    # in the cache reports, and keeps that figure instead of its own.
    seconds = time.time() - started
    if not computes and report_path.exists():
        seconds = float(json.loads(report_path.read_text()).get("seconds", seconds))
    zero = np.array(results[: len(tasks)])
    scored: list[CandidateResult] = []
    for i, (name, algo, settings) in enumerate(candidates):
        curves = [
            [(int(s), float(r)) for s, r in c]
            for c in results[len(tasks) * (i + 1) : len(tasks) * (i + 2)]
        ]
        returns = np.array([[r for _, r in c] for c in curves])
        steps = [int(np.mean([c[j][0] for c in curves])) for j in range(returns.shape[1])]
        diffs = returns - zero[:, None]
        drops = -diffs.mean(0)
        worst = int(np.argmax(drops))
        noise = _paired_noise(diffs[:, worst])
        scored.append(
            CandidateResult(
                name,
                algo,
                settings,
                curves,
                mean=[(s, float(r)) for s, r in zip(steps, returns.mean(0), strict=True)],
                worst_drop=float(max(0.0, drops[worst])),
                noise=noise,
            )
        )
    winner, reason = choose_winner(scored, incumbent=recipe.finetune_algo)
    result = {
        "family": mapping.family_name,
        "checkpoint": path,
        "tasks": tasks,
        "points": list(config.points),
        "episodes": config.episodes,
        "zero_shot": [float(z) for z in zero],
        "candidates": [
            {
                "name": c.name,
                "algo": c.algo,
                "settings": c.settings,
                "mean": c.mean,
                "worst_drop": c.worst_drop,
                "noise": c.noise,
                "safe": c.safe,
                "curves": c.curves,
            }
            for c in scored
        ],
        "winner": winner.name,
        "reason": reason,
        "seconds": round(seconds, 1),
    }
    write_json(report_path, result)
    table = selection_table(result)
    write_text(config.out_dir / "results.md", table + "\n")
    from meta_rl.benchmarks.plots import finetune_selection_plot

    finetune_selection_plot(result, config.out_dir / "curves.png")
    result["table"] = table
    return result


def selection_table(result: Mapping[str, Any]) -> str:
    """The selection's report in Markdown."""
    zero = float(np.mean(result["zero_shot"]))
    points = result["points"]
    head = " | ".join(f"{s:,} steps" for s in points)
    lines = [
        f"Fine-tune selection for {result['family']} ({result['checkpoint']}): "
        f"{len(result['tasks'])} validation tasks past early stopping's, "
        f"{result['episodes']} deterministic episodes per point; mean return "
        f"(zero-shot {zero:.1f}). A point's env steps include an off-policy warm start's.",
        "",
        f"| candidate | {head} | worst drop below zero-shot | noise | safe |",
        "|---|" + "---|" * (len(points) + 3),
    ]
    for c in result["candidates"]:
        cells = " | ".join(f"{r:.1f} ({s})" for s, r in c["mean"])
        lines.append(
            f"| {c['name']} | {cells} | {c['worst_drop']:.1f} | {c['noise']:.1f} | "
            f"{'yes' if c['safe'] else 'no'} |"
        )
    reason = result.get("reason", "the safe candidate with the best last point")
    lines += ["", f"Winner: `{result['winner']}` ({reason})."]
    return "\n".join(lines)
