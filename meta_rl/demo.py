"""The demo: a shipped mapping on tasks it never saw, against the alternatives."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from meta_rl.benchmarks.finetune import finetune_job, scratch_sac_job
from meta_rl.benchmarks.plots import adaptation_plot
from meta_rl.envs import Task
from meta_rl.evaluation import evaluate_params, learning_curve
from meta_rl.infra.files import write_json
from meta_rl.infra.parallel import call_on_one_thread, run_jobs
from meta_rl.infra.sb3 import make_agent
from meta_rl.mapping.checkpoint import TrainedMapping


def _ppo_scratch_job(
    checkpoint: str, task: Task, marks: list[int], episodes: int, seed: int
) -> list[tuple[int, float]]:
    """Worker: PPO from scratch with the recipe's settings, rollouts as long as one step
    between marks (SB3 always finishes a rollout), evaluated at ``marks``."""
    mapping = TrainedMapping.load(checkpoint)
    recipe = mapping.recipe
    rollout = max(1, marks[1] // recipe.n_envs)
    settings = {
        **recipe.scratch,
        "n_steps": rollout,
        "batch_size": min(recipe.scratch.get("batch_size", 64), rollout * recipe.n_envs),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_agent(
            mapping.family, task, mapping.arch, settings, n_envs=recipe.n_envs, seed=seed
        )
    return learning_curve(
        model,
        mapping.spec,
        mapping.family,
        task,
        checkpoints=marks,
        episodes=episodes,
        seed=seed + 1,
    )


def run_demo(
    *,
    checkpoint: str = "pendulum",
    out_dir: Path = Path("meta-rl-demo"),
    n_tasks: int = 2,
    steps: int = 5000,
    seed: int = 0,
    episodes: int = 5,
    progress: bool = True,
    workers: int = 2,
) -> dict[str, Any]:
    """Show, on unseen tasks, the default-task expert, the zero-shot prediction, the
    family's default fine-tune rising from it, and the from-scratch learner a practitioner
    would pick at the same budget (SAC for continuous actions, PPO for discrete ones);
    write a table and a PNG. The fine-tune's points count its warm start's env steps.

    Args:
        checkpoint: Checkpoint path or shipped name.
        out_dir: Where ``demo.png`` and ``demo.json`` go.
        n_tasks: Number of unseen tasks (the checkpoint's test tasks).
        steps: Fine-tune budget, also given to PPO from scratch.
        seed: Seed of the fine-tunes and evaluations.
        episodes: Evaluation episodes per point.
        progress: Show a progress bar.
        workers: Processes running the fine-tunes and the runs from scratch.
    """
    mapping = TrainedMapping.load(checkpoint)
    family = mapping.family
    tasks = list(mapping.info.get("split", {}).get("test", []))[:n_tasks]
    if len(tasks) < n_tasks:
        tasks += mapping.task_space.sample(n_tasks - len(tasks), seed + 99)
    marks = sorted({0, *(int(steps * f) for f in (0.2, 0.4, 0.6, 0.8, 1.0))})
    algo = mapping.recipe.finetune_algo
    box = mapping.arch.action_kind == "box"
    scratch_name = "SAC from scratch" if box else "PPO from scratch"
    jobs: list[tuple[Any, ...]] = []
    for task in tasks:
        jobs.append(
            (finetune_job, (str(checkpoint), task, "prediction", algo, {}, marks, episodes, seed))
        )
        if box:
            jobs.append(
                (
                    scratch_sac_job,
                    (family.name, task, mapping.recipe.sac or {}, marks, episodes, seed),
                )
            )
        else:
            jobs.append((_ppo_scratch_job, (str(checkpoint), task, marks, episodes, seed)))
    bar = tqdm(total=len(jobs), desc="demo runs", disable=not progress)
    curves = run_jobs(call_on_one_thread, jobs, workers=workers, on_done=lambda *_: bar.update(1))
    bar.close()
    rows, panels = [], []
    for i, task in enumerate(tasks):
        tuned, scratch = curves[2 * i], curves[2 * i + 1]
        default = evaluate_params(
            mapping.spec, mapping.base_params, family, task, episodes=episodes, seed=seed + 1
        )
        zero_shot = evaluate_params(
            mapping.spec, mapping.predict(task), family, task, episodes=episodes, seed=seed + 1
        )
        tuned = [(0, zero_shot)] + [(s, r) for s, r in tuned if s > 0]
        rows.append(
            {
                "task": task,
                "default_expert": default,
                "zero_shot": zero_shot,
                "fine_tuned": tuned[-1][1],
                "scratch": scratch[-1][1],
                "fine_tune_curve": tuned,
                "scratch_curve": scratch,
            }
        )
        panels.append(
            {
                "title": ", ".join(f"{k}={v:.2f}" for k, v in task.items()),
                "curves": {
                    f"fine-tune ({algo.upper()}) from prediction": tuned,
                    scratch_name: scratch,
                },
                "lines": {"default-task expert": default},
            }
        )
    out_dir = Path(out_dir)
    plot = adaptation_plot(
        panels,
        out_dir / "demo.png",
        title=f"{mapping.family_name}: unseen tasks, {steps} env steps",
    )
    header = (
        f"Mean return over {episodes} deterministic episodes per task (higher is better).\n\n"
        f"| task | default-task expert | zero-shot | fine-tuned ({algo.upper()}, {steps} steps) "
        f"| {scratch_name} ({steps} steps) |\n|---|---|---|---|---|"
    )
    lines = [header] + [
        f"| {', '.join(f'{k}={v:.2f}' for k, v in r['task'].items())} | "
        f"{r['default_expert']:.1f} | {r['zero_shot']:.1f} | {r['fine_tuned']:.1f} | "
        f"{r['scratch']:.1f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    result = {
        "family": mapping.family_name,
        "algo": algo,
        "steps": steps,
        "episodes": episodes,
        "rows": rows,
        "table": table,
        "plot": str(plot),
    }
    write_json(out_dir / "demo.json", result)
    return result
