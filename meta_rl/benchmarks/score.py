"""``meta-rl benchmark``: a trained mapping against the alternatives on held-out tasks.

Every method is scored on the checkpoint's test tasks (never used for training or for any
choice) with the normalised score ``(R - R_random) / (R_oracle - R_random)``. The oracle of
a task is the best of PPO from scratch (the best point of its run) and, for Box actions,
SAC, each trained on that very task at the family recipe's budget; oracle runs are cached
in the output folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from meta_rl.benchmarks.finetune import STARTS, finetune_job
from meta_rl.benchmarks.maml import MamlConfig, maml_adapt_and_evaluate, meta_train
from meta_rl.benchmarks.plots import adaptation_plot
from meta_rl.benchmarks.results import (
    STEPS_METHODS,
    Interval,
    ScoreResult,
    ScoreSummary,
    TaskRow,
    bootstrap_ci,
)
from meta_rl.envs import Task, get_family
from meta_rl.errors import CheckpointError, ConfigError
from meta_rl.evaluation import (
    ParamsPolicy,
    evaluate_params,
    learning_curve,
    normalised_score,
    random_rollout,
    run_episodes,
)
from meta_rl.infra.files import load_tensors, save_tensors, write_json, write_text
from meta_rl.infra.keys import cache_key
from meta_rl.infra.parallel import check_backend, run_jobs
from meta_rl.infra.sb3 import OFF_POLICY_ALGOS, make_agent
from meta_rl.infra.threads import torch_threads
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.policy import PolicyArch, PolicySpec, plain_params
from meta_rl.training.recipes import Recipe, recipe_for

BUDGET_SCALE = {"small": 0.02, "full": 1.0}


def budget_scale(budget: str) -> float:
    """Env-step factor of a budget: ``"small"`` (0.02, a smoke run), ``"full"`` (1.0), or a
    fraction such as ``"0.25"``.

    Raises:
        ValueError: anything else.
    """
    if budget in BUDGET_SCALE:
        return BUDGET_SCALE[budget]
    try:
        value = float(budget)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise ConfigError(f"budget must be 'small', 'full' or a fraction in (0, 1], got {budget!r}")
    return value


def sac_scale(budget: str) -> float:
    """The factor of the oracle's SAC run alone (``--sac-budget``): a budget as
    :func:`budget_scale` takes, or ``"0"``, which leaves SAC out (the oracle is then PPO
    alone, and the report says so)."""
    try:
        if float(budget) == 0:
            return 0.0
    except ValueError:
        pass  # budget_scale's message names what is accepted
    return budget_scale(budget)


def check_budgets(budget: str, oracle_budget: str | None, sac_budget: str | None) -> None:
    """A clear error for a bad budget, oracle budget or SAC budget (``None``: default)."""
    budget_scale(budget)
    if oracle_budget is not None:
        budget_scale(oracle_budget)
    if sac_budget is not None:
        sac_scale(sac_budget)


def oracle_scale(budget: str, oracle_budget: str | None = None) -> float:
    """The oracle's budget factor: ``oracle_budget``'s where given, else full unless
    ``budget`` is ``"small"``. A weak oracle would flatter every method, so a fractional
    ``budget`` shrinks the methods' training, never the oracle; shrinking the oracle too
    (where its full runs do not fit, e.g. LunarLander's 500k-step SAC) is a separate,
    explicit choice that the report states."""
    return budget_scale(oracle_budget_name(budget, oracle_budget))


def oracle_budget_name(budget: str, oracle_budget: str | None = None) -> str:
    """The oracle's budget as named in reports: ``oracle_budget`` where given, else
    ``"small"`` for a smoke run and ``"full"`` otherwise."""
    if oracle_budget is not None:
        return oracle_budget
    return "small" if budget == "small" else "full"


SMOKE_WARM_START: dict[str, int] = {"fit_updates": 50, "critic_updates": 50}
"""An off-policy fine-tune's warm start under ``budget="small"``: a tenth or less of its
gradient steps (:class:`~meta_rl.agents.warm.WarmStart`), the same env steps."""


@dataclass(frozen=True, kw_only=True)
class ScoreConfig:
    """Settings of ``meta-rl benchmark``.

    Attributes:
        checkpoint: Checkpoint path or shipped name.
        out_dir: Where ``results.json``, ``results.md``, the PNGs and the oracle cache go.
        budget: ``"full"`` (the recipe's budgets), ``"small"`` (2 percent of every budget,
            two tasks and :data:`SMOKE_WARM_START`'s off-policy warm starts: a smoke run
            that finishes in minutes), or a fraction such as
            ``"0.25"`` (the baselines' training shrinks, the oracle stays at full budget).
        oracle_budget: The oracle's own budget (``"full"`` or a fraction; default: full,
            or small with ``budget="small"``). Below full, every score is relative to a
            weaker oracle, and the report says so.
        sac_budget: The budget of the oracle's SAC run alone, where it differs from
            ``oracle_budget`` (SAC's gradient step per env step makes it the oracle's cost
            on MountainCarContinuous, while PPO's full run takes under a minute); the report
            says so where the oracle has a SAC run. ``"0"`` leaves SAC out, where even a
            short run does not fit (LunarLanderContinuous's trains at about 50 steps/s here).
        seed: Seed of fine-tunes and evaluations, and of the oracles unless ``oracle_seed``
            is given.
        oracle_seed: Seed of the oracle runs (default: ``seed``); the suite holds it fixed
            so that every training seed shares one oracle run per task.
        workers: Processes that train oracles (0: this process).
        finetune_steps: Points of the adaptation curves, in env steps (an off-policy
            warm start's own steps included).
        finetune_algos: The fine-tunes curved from the prediction and from the
            default-task expert (default: the recipe's ``finetune_algo``, then ``ppo``);
            the first gives the "mapping, fine-tuned" rows.
        episodes: Evaluation episodes per task and point (default: the recipe's).
        context: Also train and score the context-conditioned PPO policy (descriptor in the
            observation, a training task at every reset) for as many env steps as the
            mapping's training took; cached in ``out_dir``.
        maml: Also meta-train MAML on the training tasks for as many env steps as the
            mapping's training took, and score it before and after one inner
            policy-gradient step on each test task; cached in ``out_dir``.
        recurrent: Also train the baseline for a task that is not given, sb3-contrib's
            ``RecurrentPPO`` (no descriptor; an LSTM over its own history), on the same
            training tasks for as many env steps; cached in ``out_dir``.
        context_sac: Also train and score the context-conditioned SAC policy (Box actions:
            the descriptor in the observation, a training task at every reset, the
            recipe's SAC settings) for as many env steps; cached in ``out_dir``.
        baseline_steps: Env steps of the context and MAML baselines (default: the mapping's
            training steps times the budget's factor).
        infer_steps: Probe steps of the "task inferred" column, scored where the mapping
            has an inference model (default: the model's ``probe_steps``; 0: no column).
        oracle_cache: JSON cache of oracle runs (default: ``out_dir/oracles.json``).
        backend: ``"local"`` (processes here) or ``"ray"`` (oracle runs, baselines and
            per-task evaluations as Ray tasks; see :mod:`meta_rl.infra.parallel`).
        progress: Show progress bars.
    """

    checkpoint: str
    out_dir: Path = Path("benchmark-out")
    budget: str = "full"
    oracle_budget: str | None = None
    sac_budget: str | None = None
    seed: int = 0
    oracle_seed: int | None = None
    workers: int = 2
    finetune_steps: tuple[int, ...] = (0, 1000, 2000, 5000)
    episodes: int | None = None
    context: bool = False
    maml: bool = False
    recurrent: bool = False
    context_sac: bool = False
    baseline_steps: int | None = None
    oracle_cache: Path | None = None
    backend: str = "local"
    progress: bool = True
    finetune_algos: tuple[str, ...] | None = None
    infer_steps: int | None = None

    def __post_init__(self) -> None:
        if self.infer_steps is not None and self.infer_steps < 0:
            raise ConfigError(f"infer_steps must be 0 or more, got {self.infer_steps}")
        check_budgets(self.budget, self.oracle_budget, self.sac_budget)
        check_backend(self.backend)
        steps = list(self.finetune_steps)
        if not steps or steps != sorted(set(steps)) or steps[0] < 0:
            raise ConfigError("finetune_steps must be increasing, non-negative whole numbers")
        object.__setattr__(self, "out_dir", Path(self.out_dir))


def finetune_algos(config: ScoreConfig, mapping: TrainedMapping) -> tuple[str, ...]:
    """The fine-tunes the benchmark curves: ``config.finetune_algos``, or the recipe's
    default (first: the "mapping, fine-tuned" rows) and PPO."""
    from meta_rl.agents.adapt import check_algo

    algos = config.finetune_algos or (mapping.recipe.finetune_algo, "ppo")
    algos = tuple(dict.fromkeys(algos))  # each once, in order
    for algo in algos:
        check_algo(mapping, algo)
    return algos


def _has_sac(mapping: TrainedMapping) -> bool:
    """Whether the family's oracle, at its recipe's budget, includes a SAC run."""
    candidates = _candidates(recipe_for(mapping.family_name), mapping.arch)
    return any(c["algo"] == "sac" for c in candidates)


def _candidates(recipe: Recipe, arch: PolicyArch) -> list[dict[str, Any]]:
    """The oracle's candidates: PPO, and SAC for Box actions where the recipe names it."""
    out = [
        {
            "algo": "ppo",
            "settings": recipe.scratch,
            "n_envs": recipe.n_envs,
            "steps": recipe.oracle_steps,
        }
    ]
    if recipe.sac is not None and arch.action_kind == "box":
        steps = recipe.sac_steps
        marks = sorted({m for m in (1000, 2000, 5000, 10_000, steps // 2, steps) if 0 < m <= steps})
        out.append(
            {"algo": "sac", "settings": recipe.sac, "n_envs": 1, "steps": steps, "marks": marks}
        )
    return out


def _job_key(family: str, task: Task, candidate: dict[str, Any], seed: int, episodes: int) -> str:
    settings = {"family": family, "task": task, **candidate, "seed": seed, "episodes": episodes}
    return f"{candidate['algo']}-" + cache_key(settings)


@torch_threads(1)  # one thread per job; the caller's count is given back
def _oracle_job(
    family_name: str,
    task: Task,
    candidate: dict[str, Any],
    arch_json: dict[str, Any],
    seed: int,
    episodes: int,
) -> dict[str, Any]:
    """Worker: one candidate (PPO or SAC) trained from scratch on one task.

    PPO's run is evaluated along the way, which gives PPO-from-scratch's learning curve.
    """
    family = get_family(family_name)
    steps = int(candidate["steps"])
    if candidate["algo"] == "ppo":
        arch = PolicyArch.from_json(arch_json)
        spec = PolicySpec(arch)
        marks = sorted({0, *(int(steps * f) for f in (0.1, 0.25, 0.5, 1.0))})
        ppo = make_agent(
            family, task, arch, candidate["settings"], n_envs=candidate["n_envs"], seed=seed
        )
        curve = learning_curve(
            ppo, spec, family, task, checkpoints=marks, episodes=episodes, seed=seed + 1
        )
        return {"task": task, "algo": "ppo", "return": max(r for _, r in curve), "curve": curve}
    from meta_rl.benchmarks.finetune import scratch_sac_job

    marks = candidate.get("marks") or [steps]
    curve = scratch_sac_job(family_name, task, candidate["settings"], [0, *marks], episodes, seed)
    # The oracle is SAC's end; its curve is SAC from scratch, for the fine-tunes' plots.
    return {"task": task, "algo": "sac", "return": curve[-1][1], "curve": curve}


def oracle_recipe(family_name: str, config: ScoreConfig) -> Recipe:
    """The recipe the oracles train with: the family's current one (not the one a mapping
    was trained with), at the oracle's budget and SAC's own."""
    return recipe_for(family_name).scaled(
        oracle_scale(config.budget, config.oracle_budget),
        sac_factor=None if config.sac_budget is None else sac_scale(config.sac_budget),
    )


def oracles(
    family_name: str,
    arch: PolicyArch,
    tasks: Sequence[Task],
    recipe: Recipe,
    config: ScoreConfig,
    episodes: int,
) -> list[dict[str, Any]]:
    """Per task: each candidate's result and the oracle (the best), cached in ``out_dir``.

    ``arch`` is the PPO candidate's policy (the mapping's); no mapping is needed, so a
    split's oracles can be run before, or apart from, its mappings.
    """
    cache_path = config.oracle_cache or config.out_dir / "oracles.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    candidates = _candidates(recipe, arch)
    seed = config.seed if config.oracle_seed is None else config.oracle_seed
    jobs = [
        (
            _job_key(family_name, t, c, seed, episodes),
            (family_name, t, c, arch.to_json(), seed, episodes),
        )
        for t in tasks
        for c in candidates
    ]
    todo = [(k, a) for k, a in jobs if k not in cache]
    bar = tqdm(
        total=len(jobs),
        initial=len(jobs) - len(todo),
        desc="oracle runs",
        disable=not config.progress,
    )

    def save(index: int, result: dict[str, Any]) -> None:
        cache[todo[index][0]] = result
        write_json(cache_path, cache)
        bar.update(1)

    run_jobs(
        _oracle_job,
        [a for _, a in todo],
        workers=config.workers,
        backend=config.backend,
        on_done=save,
    )
    bar.close()
    out = []
    for i, task in enumerate(tasks):
        runs = {
            cache[k]["algo"]: cache[k]
            for k, _ in jobs[i * len(candidates) : (i + 1) * len(candidates)]
        }
        # The best point of PPO's run: a PPO run can end worse than it was on the way.
        ppo = max(r for _, r in runs["ppo"]["curve"])
        sac = runs["sac"]["return"] if "sac" in runs else None
        out.append(
            {
                "task": task,
                "ppo": ppo,
                "ppo_curve": runs["ppo"]["curve"],
                "sac": sac,
                "sac_curve": runs["sac"]["curve"] if "sac" in runs else None,
                "oracle": max(ppo, sac) if sac is not None else ppo,
            }
        )
    return out


@torch_threads(1)  # one thread per job; the caller's count is given back
def _task_row(
    config: ScoreConfig,
    task: Task,
    oracle: dict[str, Any],
    episodes: int,
    context: dict[str, Any] | None,
    maml: dict[str, Any] | None,
    recurrent: dict[str, Any] | None = None,
    context_sac: dict[str, Any] | None = None,
) -> TaskRow:
    """Worker: every method on one held-out task (its curves, scores and steps to 0.9)."""

    mapping = TrainedMapping.load(config.checkpoint)
    family, spec = mapping.family, mapping.spec
    rand = float(
        random_rollout(family, task, episodes=episodes, seed=config.seed + 1)["return_mean"]
    )
    default = evaluate_params(
        spec, mapping.base_params, family, task, episodes=episodes, seed=config.seed + 1
    )

    algos = finetune_algos(config, mapping)
    smoke = SMOKE_WARM_START if config.budget == "small" else {}
    finetunes = {
        f"{start}:{algo}": finetune_job(
            str(config.checkpoint),
            task,
            start,
            algo,
            smoke if algo in OFF_POLICY_ALGOS else {},
            config.finetune_steps,
            episodes,
            config.seed,
        )
        for algo in algos
        for start in STARTS
    }
    # Step 0 of every curve is the policy the fine-tune starts from: an off-policy warm
    # start's first point comes after its own env steps, so the start is put before it.
    zero_shot = evaluate_params(
        spec,
        mapping.predict(task, extrapolate=True),
        family,
        task,
        episodes=episodes,
        seed=config.seed + 1,
    )
    for key, points in list(finetunes.items()):
        if points[0][0] > 0:
            start = (0, zero_shot if key.startswith("prediction:") else default)
            # Budgets within the warm start give its point again: it is kept once.
            kept = [p for i, p in enumerate(points) if i == 0 or p[0] != points[i - 1][0]]
            finetunes[key] = [start, *kept]
    curve = finetunes[f"prediction:{algos[0]}"]  # the family's default fine-tune
    default_curve = finetunes[f"expert:{algos[0]}"]
    if oracle.get("sac_curve"):
        finetunes["scratch:sac"] = [(int(s), float(r)) for s, r in oracle["sac_curve"]]
    finetunes["scratch:ppo"] = [(int(s), float(r)) for s, r in oracle["ppo_curve"]]

    def score(value: float, rand: float = rand, oracle: dict = oracle) -> float | None:
        if not oracle["oracle"] > rand:  # an oracle no better than random: undefined
            return None
        return normalised_score(value, rand, oracle["oracle"])

    def steps_to(curve: list, level: float = 0.9, score: Any = score) -> int | None:
        """Env steps of the first point at ``level`` of the oracle (None: never reached)."""
        return next((s for s, r in curve if (score(r) or 0.0) >= level), None)

    extra: dict[str, Any] = {}
    if context is not None:
        ctx = _evaluate_context(context, family, task, episodes, config.seed + 1)
        extra = {"context": ctx, "context_score": score(ctx), "context_steps": context["steps"]}
    if maml is not None:
        before, after, used = maml_adapt_and_evaluate(
            spec,
            maml["theta"],
            family,
            task,
            MamlConfig(),
            episodes=episodes,
            seed=config.seed + 1,
        )
        extra.update(
            {
                "maml_before": before,
                "maml_before_score": score(before),
                "maml_after": after,
                "maml_after_score": score(after),
                "maml_adapt_steps": used,
                "maml_meta_steps": maml["steps"],
            }
        )

    if recurrent is not None:
        value = _evaluate_trained("recurrent", recurrent, mapping, task, episodes, config.seed + 1)
        extra.update(
            recurrent=value, recurrent_score=score(value), recurrent_steps=recurrent["steps"]
        )
    if context_sac is not None:
        value = _evaluate_trained(
            "context-sac", context_sac, mapping, task, episodes, config.seed + 1
        )
        extra.update(
            context_sac=value,
            context_sac_score=score(value),
            context_sac_steps=context_sac["steps"],
        )
    if mapping.inference is not None and config.infer_steps != 0:
        inferred, belief = _evaluate_inferred(mapping, config, task, episodes)
        extra.update(
            inferred=inferred,
            inferred_score=score(inferred),
            inferred_probe_steps=belief.steps,
            inferred_task=belief.task,
        )

    ppo_curve = [(int(s), float(r)) for s, r in oracle["ppo_curve"]]
    return TaskRow(
        task=task,
        random=rand,
        oracle=oracle["oracle"],
        oracle_ppo=oracle["ppo"],
        oracle_sac=oracle["sac"],
        default_expert=default,
        default_expert_score=score(default),
        fine_tune_curve=curve,
        fine_tune_scores=[(s, score(r)) for s, r in curve],
        default_fine_tune_curve=default_curve,
        default_fine_tune_scores=[(s, score(r)) for s, r in default_curve],
        ppo_scratch_curve=ppo_curve,
        ppo_scratch_scores=[(s, score(r)) for s, r in ppo_curve],
        steps_to_09={
            "mapping_fine_tune": steps_to(curve),
            "default_fine_tune": steps_to(default_curve),
            "ppo_scratch": steps_to(ppo_curve),
        },
        finetunes=finetunes,
        finetune_scores={k: [(s, score(r)) for s, r in c] for k, c in finetunes.items()},
        steps_to_level={
            str(level): {k: steps_to(c, level) for k, c in finetunes.items()}
            for level in (0.9, 0.95)
        },
        **extra,
    )


def evaluation_episodes(config: ScoreConfig, recipe: Recipe) -> int:
    """Episodes per task and point: ``config.episodes`` where set, 3 in a smoke run, else
    the recipe's (10, the protocol's), whatever fraction the budget is."""
    return config.episodes or (3 if config.budget == "small" else recipe.eval_episodes)


def score_mapping(config: ScoreConfig) -> ScoreResult:
    """Score the mapping and its baselines on the held-out tasks; write the report.

    Oracle runs, the two trained baselines and the per-task evaluations run as parallel
    jobs (``config.workers`` processes, or Ray tasks).
    """
    mapping = TrainedMapping.load(config.checkpoint)
    if config.context_sac:  # before any oracle trains
        check_context_sac(mapping.family_name, mapping.arch.action_kind)
    recipe = oracle_recipe(mapping.family_name, config)
    episodes = evaluation_episodes(config, mapping.recipe)
    tasks = list(mapping.info.get("split", {}).get("test", []))
    if config.budget == "small":
        tasks = tasks[:2]
    if not tasks:
        raise CheckpointError(f"{config.checkpoint} lists no test tasks in its metadata")
    _check_infer_steps(mapping, config)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    oracle_results = oracles(mapping.family_name, mapping.arch, tasks, recipe, config, episodes)
    trained = _train_baselines(mapping, config)
    context, maml = trained.get("context"), trained.get("maml")
    recurrent, context_sac = trained.get("recurrent"), trained.get("context-sac")

    bar = tqdm(total=len(tasks), desc="methods", disable=not config.progress)
    rows = run_jobs(
        _task_row,
        [
            (
                replace(config, progress=False),
                task,
                oracle,
                episodes,
                context,
                maml,
                recurrent,
                context_sac,
            )
            for task, oracle in zip(tasks, oracle_results, strict=True)
        ],
        workers=config.workers,
        backend=config.backend,
        on_done=lambda *_: bar.update(1),
    )
    bar.close()
    result = ScoreResult(
        family=mapping.family_name,
        checkpoint=str(config.checkpoint),
        objective=mapping.objective,
        budget=config.budget,
        oracle_budget=oracle_budget_name(config.budget, config.oracle_budget),
        # recorded where the family's oracle has a SAC run to shorten or leave out
        sac_budget=config.sac_budget if _has_sac(mapping) else None,
        episodes=episodes,
        train_env_steps=mapping.info.get("env_steps"),
        summary=_summarise(rows, config.finetune_steps),
        rows=rows,
    )
    result.table = _markdown(result)
    write_json(config.out_dir / "results.json", result.to_json())
    write_text(config.out_dir / "results.md", result.table + "\n")
    panels = [
        {
            "title": ", ".join(f"{k}={v:.2f}" for k, v in r.task.items()),
            "curves": {"fine-tune from prediction": r.fine_tune_curve},
            "lines": {"default-task expert": r.default_expert, "oracle": r.oracle},
        }
        for r in rows
    ]
    adaptation_plot(
        panels, config.out_dir / "adaptation.png", title=f"{mapping.family_name}: held-out tasks"
    )
    result.report = str(config.out_dir / "results.md")
    return result


def _baseline_budget(
    mapping: TrainedMapping, config: ScoreConfig, name: str, settings: dict[str, Any]
) -> tuple[int, Path]:
    """A baseline's env steps (as many as the mapping's training, scaled by the budget) and
    the cache file of its result, keyed by everything that determines it."""
    steps = config.baseline_steps
    if steps is None:
        steps = int(mapping.info.get("env_steps") or mapping.recipe.base_steps)
        steps = max(256, int(steps * budget_scale(config.budget)))
    key = cache_key(
        {
            "family": mapping.family_name,
            "tasks": mapping.training_tasks,
            "steps": steps,
            "seed": config.seed,
            **settings,
        }
    )
    return steps, config.out_dir / f"{name}-{key}.safetensors"


@torch_threads(1)  # one thread per job; the caller's count is given back
def _baseline_job(name: str, config: ScoreConfig) -> dict[str, Any]:
    """Worker: one trained baseline (``"context"``, ``"maml"``, ``"recurrent"`` or
    ``"context-sac"``), from its cache if there."""
    mapping = TrainedMapping.load(config.checkpoint)
    return _BASELINES[name](mapping, config)


def _train_baselines(mapping: TrainedMapping, config: ScoreConfig) -> dict[str, Any]:
    """The baselines that ``config`` asks for; with two or more workers they train at once,
    each in its own process."""
    asked = (
        ("context", config.context),
        ("maml", config.maml),
        ("recurrent", config.recurrent),
        ("context-sac", config.context_sac),
    )
    wanted = [name for name, on in asked if on]
    if config.backend == "ray" or (config.workers >= 2 and len(wanted) >= 2):
        quiet = replace(config, progress=False)
        results = run_jobs(
            _baseline_job,
            [(name, quiet) for name in wanted],
            workers=config.workers,
            backend=config.backend,
        )
        return dict(zip(wanted, results, strict=True))
    return {name: _BASELINES[name](mapping, config) for name in wanted}


def _context_policy(mapping: TrainedMapping, config: ScoreConfig) -> dict[str, Any]:
    """The context-conditioned PPO policy for the mapping's training tasks, cached as flat
    parameters (safetensors, no pickle) in ``out_dir``."""
    from meta_rl.agents.baselines import train_context_policy

    recipe = mapping.recipe
    train_tasks = mapping.training_tasks
    steps, path = _baseline_budget(
        mapping, config, "context", {"ppo": recipe.scratch, "n_envs": recipe.n_envs}
    )
    if path.exists():
        tensors, meta = load_tensors(path)
        return {
            "params": tensors["params"],
            "arch": PolicyArch.from_json(meta["arch"]),
            "steps": meta["steps"],
        }
    model = train_context_policy(
        mapping.family,
        train_tasks,
        recipe,
        steps=steps,
        seed=config.seed,
        progress_bar=config.progress,
    )
    arch = PolicyArch.for_env(
        model.get_env(),
        pi=recipe.pi,
        vf=recipe.vf,
        activation=recipe.activation,
        log_std_init=recipe.log_std_init,
    )
    params = plain_params(model, PolicySpec(arch))
    save_tensors(path, {"params": params}, {"arch": arch.to_json(), "steps": steps})
    return {"params": params, "arch": arch, "steps": steps}


def _maml_init(mapping: TrainedMapping, config: ScoreConfig) -> dict[str, Any]:
    """MAML's meta-trained initial parameters, cached as safetensors in ``out_dir``."""
    train_tasks = mapping.training_tasks
    maml_config = MamlConfig()
    steps, path = _baseline_budget(
        mapping, config, "maml", {"arch": mapping.arch.to_json(), "maml": asdict(maml_config)}
    )
    if path.exists():
        tensors, meta = load_tensors(path)
        return {"theta": tensors["theta"], "steps": meta["steps"]}
    history: list[dict[str, float]] = []
    theta = meta_train(
        mapping.family,
        train_tasks,
        mapping.arch,
        maml_config,
        steps=steps,
        seed=config.seed,
        progress=config.progress,
        history=history,
    )
    used = int(history[-1]["env_steps"])  # whole meta-batches: a little over ``steps``
    save_tensors(path, {"theta": theta}, {"steps": used})
    return {"theta": theta, "steps": used}


def _recurrent_policy(mapping: TrainedMapping, config: ScoreConfig) -> dict[str, Any]:
    """The recurrent baseline (``RecurrentPPO``, the task hidden) for the mapping's training
    tasks, cached as its policy's tensors (safetensors, no pickle) in ``out_dir``."""
    from meta_rl.agents.baselines import (
        RECURRENT_LSTM,
        recurrent_policy_state,
        train_recurrent_policy,
    )

    recipe = mapping.recipe
    steps, path = _baseline_budget(
        mapping,
        config,
        "recurrent",
        {"ppo": recipe.scratch, "n_envs": recipe.n_envs, "lstm": RECURRENT_LSTM},
    )
    return _trained_state(
        mapping, config, steps, path, train_recurrent_policy, recurrent_policy_state
    )


def _trained_state(
    mapping: TrainedMapping,
    config: ScoreConfig,
    steps: int,
    path: Path,
    train: Callable[..., Any],
    state_of: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]],
) -> dict[str, Any]:
    """A baseline's policy tensors and settings from the cache file at ``path``; else
    ``train`` (a :mod:`meta_rl.agents.baselines` trainer) runs ``steps`` env steps on the
    mapping's training tasks, and ``state_of`` its model's tensors are saved there first
    with the env steps taken (safetensors, no pickle)."""
    if not path.exists():
        model = train(
            mapping.family,
            mapping.training_tasks,
            mapping.recipe,
            steps=steps,
            seed=config.seed,
            progress_bar=config.progress,
        )
        state, meta = state_of(model)
        save_tensors(path, state, {**meta, "steps": int(model.num_timesteps)})
    tensors, meta = load_tensors(path)
    return {"state": tensors, "meta": meta, "steps": meta["steps"]}


def check_context_sac(family_name: str, action_kind: str) -> None:
    """Raise unless a family of ``action_kind`` (``"box"``, ``"discrete"``) can have the
    context-sac baseline."""
    if action_kind != "box":
        raise ConfigError(
            f"the context-sac baseline needs continuous actions; {family_name} has "
            f"{action_kind} ones (its context baseline is the PPO one, 'context')"
        )


def _context_sac(mapping: TrainedMapping, config: ScoreConfig) -> dict[str, Any]:
    """The context-conditioned SAC policy for the mapping's training tasks, cached as its
    policy's tensors (safetensors, no pickle) in ``out_dir``. Its run resumes from a file
    beside the cache (``<cache name>.resume.safetensors``), written after every chunk of
    env steps and removed once the cache holds the finished policy."""
    from meta_rl.agents import baselines

    check_context_sac(mapping.family_name, mapping.arch.action_kind)
    sac = mapping.recipe.sac or {}
    settings = {"sac": sac, "chunk": baselines.CONTEXT_SAC_CHUNK}
    steps, path = _baseline_budget(mapping, config, "context-sac", settings)
    resume = path.with_name(f"{path.stem}.resume.safetensors")
    train = partial(baselines.train_context_sac, resume=resume)
    trained = _trained_state(mapping, config, steps, path, train, baselines.context_sac_state)
    resume.unlink(missing_ok=True)
    return trained


_BASELINES = {
    "context": _context_policy,
    "maml": _maml_init,
    "recurrent": _recurrent_policy,
    "context-sac": _context_sac,
}


def _evaluate_trained(
    name: str,
    trained: dict[str, Any],
    mapping: TrainedMapping,
    task: Task,
    episodes: int,
    seed: int,
) -> float:
    """Mean return on ``task`` of the ``"recurrent"`` or ``"context-sac"`` baseline that
    :func:`_trained_state` gave, its policy rebuilt from its tensors."""
    from meta_rl.agents import baselines

    rebuild, evaluate = {
        "recurrent": (baselines.rebuild_recurrent_policy, baselines.evaluate_recurrent_policy),
        "context-sac": (baselines.rebuild_context_sac, baselines.evaluate_context_policy),
    }[name]
    policy = rebuild(mapping.family, mapping.training_tasks, trained["state"], trained["meta"])
    return evaluate(policy, mapping.family, task, episodes=episodes, seed=seed)


def _evaluate_context(
    context: dict[str, Any], family: Any, task: Task, episodes: int, seed: int
) -> float:
    from meta_rl.envs import DescriptorObservation

    env = DescriptorObservation(family.make(task=task))
    try:
        policy = ParamsPolicy(PolicySpec(context["arch"]), context["params"], env.action_space)
        return float(np.mean(run_episodes(env, policy, episodes=episodes, seed=seed)))
    finally:
        env.close()


def _stat(values: Sequence[float | None]) -> Interval:
    """Mean and 95% bootstrap interval of the defined scores (tasks whose oracle beat
    random), over one run's tasks."""
    return bootstrap_ci([list(values)])


def _pooled(curves: Sequence[Sequence[tuple[int, float | None]]]) -> dict[str, Interval]:
    """One curve per task, pooled point by point; each point is labelled with its mean env
    steps over the tasks (an off-policy warm start adds a point after its own steps)."""
    out = {}
    for i in range(len(curves[0])):
        steps = round(float(np.mean([c[i][0] for c in curves])))
        out[str(steps)] = _stat([c[i][1] for c in curves])
    return out


def _check_infer_steps(mapping: TrainedMapping, config: ScoreConfig) -> None:
    """Before any work: an explicit probe length needs an inference model that takes it."""
    if not config.infer_steps:
        return
    if mapping.inference is None:
        raise CheckpointError(
            f"{config.checkpoint} has no inference model for the inferred-task column; add "
            "one with `meta-rl add-inference`, or leave out --infer-steps"
        )
    if config.infer_steps < mapping.inference.min_steps:
        raise ConfigError(
            f"--infer-steps {config.infer_steps} is shorter than the inference model's "
            f"min_steps ({mapping.inference.min_steps})"
        )


def _evaluate_inferred(
    mapping: TrainedMapping, config: ScoreConfig, task: Task, episodes: int
) -> tuple[float, Any]:
    """The zero-shot return on ``task`` of the prediction for the task that a probe of an
    env of ``task`` infers (seeded as ``evaluate(..., infer=)`` seeds it, apart from the
    evaluation episodes)."""
    from meta_rl.agents.infer import infer_task, probe_seed

    assert mapping.inference is not None
    steps = config.infer_steps or mapping.inference.probe_steps
    belief = infer_task(
        mapping, task=task, steps=steps, seed=probe_seed(config.seed + 1), extrapolate=True
    )
    value = evaluate_params(
        mapping.spec,
        mapping.predict_descriptor(belief.descriptor),
        mapping.family,
        task,
        episodes=episodes,
        seed=config.seed + 1,
    )
    return value, belief


def _summarise(rows: list[TaskRow], steps: Sequence[int]) -> ScoreSummary:
    def curve(name: str) -> dict[str, Interval]:
        return _pooled([getattr(r, name) for r in rows])

    has = rows[0] if rows else None
    context = has is not None and has.context_score is not None
    maml = has is not None and has.maml_after_score is not None
    inferred = has is not None and has.inferred is not None
    recurrent = has is not None and has.recurrent is not None
    context_sac = has is not None and has.context_sac is not None
    return ScoreSummary(
        default_expert=_stat([r.default_expert_score for r in rows]),
        fine_tune=curve("fine_tune_scores"),
        default_fine_tune=curve("default_fine_tune_scores"),
        steps_to_09={m: [r.steps_to_09[m] for r in rows] for m in STEPS_METHODS},
        context=_stat([r.context_score for r in rows]) if context else None,
        maml_before=_stat([r.maml_before_score for r in rows]) if maml else None,
        maml_after=_stat([r.maml_after_score for r in rows]) if maml else None,
        finetunes={k: _pooled([r.finetune_scores[k] for r in rows]) for k in has.finetunes}
        if has is not None and has.finetunes
        else {},
        inferred=_stat([r.inferred_score for r in rows]) if inferred else None,
        recurrent=_stat([r.recurrent_score for r in rows]) if recurrent else None,
        context_sac=_stat([r.context_sac_score for r in rows]) if context_sac else None,
    )


def oracle_note(budget: str, oracle_budget: str | None, sac_budget: str | None = None) -> str:
    """`` (oracle at budget X)`` where the oracle did not train at its full budget (a smoke
    run's small oracle goes without saying), and `` (oracle's SAC at budget Y)`` where its
    SAC run had a budget of its own or was left out."""
    oracle = oracle_budget or "full"
    note = ""
    if oracle != "full" and not (oracle == "small" and budget == "small"):
        note = f" (oracle at budget {oracle})"
    sac = sac_budget
    if sac is not None and sac_scale(sac) == 0:
        note += " (oracle: PPO alone, SAC left out)"
    elif sac is not None and sac != oracle:
        note += f" (oracle's SAC at budget {sac})"
    return note


def _fmt(stat: Interval) -> str:
    return stat.format(undefined="undefined (no oracle beat random)")


def _markdown(result: ScoreResult) -> str:
    s = result.summary
    note = oracle_note(result.budget, result.oracle_budget, result.sac_budget)
    lines = [
        f"Family {result.family}, objective `{result.objective}`, "
        f"{len(result.rows)} held-out tasks, {result.episodes} episodes each, "
        f"budget {result.budget}{note}. Normalised score, mean [95% "
        "bootstrap interval over tasks]: 0 random, 1 oracle.",
        "",
        "| method | normalised score |",
        "|---|---|",
        f"| default-task expert, no adaptation | {_fmt(s.default_expert)} |",
    ]
    for steps, v in s.fine_tune.items():
        name = "mapping, zero-shot" if steps == "0" else f"mapping + {steps} fine-tune steps"
        lines.append(f"| {name} | {_fmt(v)} |")
    if s.inferred is not None:
        probe = result.rows[0].inferred_probe_steps
        lines.append(
            f"| mapping, zero-shot, task inferred from a {probe}-step probe | {_fmt(s.inferred)} |"
        )
    if s.recurrent is not None:
        lines.append(
            f"| recurrent PPO, task hidden ({result.rows[0].recurrent_steps} env steps) | "
            f"{_fmt(s.recurrent)} |"
        )
    last = list(s.default_fine_tune)[-1]
    lines.append(
        f"| default-task expert + {last} fine-tune steps | {_fmt(s.default_fine_tune[last])} |"
    )
    first = result.rows[0]
    if s.context is not None:
        lines.append(
            f"| context-conditioned PPO ({first.context_steps} env steps) | {_fmt(s.context)} |"
        )
    if s.context_sac is not None:
        lines.append(
            f"| context-conditioned SAC ({first.context_sac_steps} env steps) | "
            f"{_fmt(s.context_sac)} |"
        )
    if s.maml_after is not None and s.maml_before is not None:
        lines.append(
            f"| MAML ({first.maml_meta_steps} meta-training env steps), before adaptation | "
            f"{_fmt(s.maml_before)} |"
        )
        lines.append(
            f"| MAML + one inner step (~{first.maml_adapt_steps} env steps) | "
            f"{_fmt(s.maml_after)} |"
        )
    lines += ["", "Env steps to reach 0.9 of the oracle, per task (`-`: not within the curve):", ""]
    for method, values in s.steps_to_09.items():
        shown = ", ".join("-" if v is None else str(v) for v in values)
        lines.append(f"- {method.replace('_', ' ')}: {shown}")
    if s.finetunes:
        lines += [
            "",
            "Fine-tunes (`start:algorithm`; `scratch:` are the oracle's own runs), normalised "
            "score by env steps (an off-policy warm start's included):",
            "",
            "| fine-tune | points (env steps: score) |",
            "|---|---|",
        ]
        for key, curve in s.finetunes.items():
            cells = ", ".join(f"{steps}: {_fmt(v)}" for steps, v in curve.items())
            lines.append(f"| {key} | {cells} |")
        for level in ("0.9", "0.95"):
            lines += ["", f"Env steps to {level} of the oracle, per task:", ""]
            for key in s.finetunes:
                values = [(r.steps_to_level or {}).get(level, {}).get(key) for r in result.rows]
                shown = ", ".join("-" if v is None else str(v) for v in values)
                lines.append(f"- {key}: {shown}")
    lines += [
        "",
        "| task | random | oracle | default expert | zero-shot |",
        "|---|---|---|---|---|",
    ]
    for r in result.rows:
        task = ", ".join(f"{k}={v:.3g}" for k, v in r.task.items())
        lines.append(
            f"| {task} | {r.random:.1f} | {r.oracle:.1f} | {r.default_expert:.1f} | "
            f"{r.fine_tune_curve[0][1]:.1f} |"
        )
    return "\n".join(lines)
