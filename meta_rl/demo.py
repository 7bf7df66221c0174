"""The main job: a shipped mapping on tasks it never saw, against the alternatives."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from meta_rl.benchmarks.plots import adaptation_plot
from meta_rl.evaluation import evaluate_params, learning_curve
from meta_rl.infra.files import write_json
from meta_rl.infra.sb3 import make_agent
from meta_rl.mapping.checkpoint import TrainedMapping


def run_demo(
    *,
    checkpoint: str = "pendulum",
    out_dir: Path = Path("meta-rl-demo"),
    n_tasks: int = 3,
    steps: int = 5000,
    seed: int = 0,
    episodes: int = 5,
    progress: bool = True,
) -> dict[str, Any]:
    """Show, on unseen tasks, the default-task expert, the zero-shot prediction, the
    fine-tuned agent and PPO from scratch at the same budget; write a table and a PNG.

    Args:
        checkpoint: Checkpoint path or shipped name.
        out_dir: Where ``demo.png`` and ``demo.json`` go.
        n_tasks: Number of unseen tasks (the checkpoint's test tasks).
        steps: Fine-tune budget, also given to PPO from scratch.
        seed: Seed of the fine-tunes and evaluations.
        episodes: Evaluation episodes per point.
        progress: Show a progress bar.
    """
    from meta_rl.agents import adapt

    mapping = TrainedMapping.load(checkpoint)
    family, spec, recipe = mapping.family, mapping.spec, mapping.recipe
    tasks = list(mapping.info.get("split", {}).get("test", []))[:n_tasks]
    if len(tasks) < n_tasks:
        tasks += mapping.task_space.sample(n_tasks - len(tasks), seed + 99)
    marks = sorted({0, *(int(steps * f) for f in (0.2, 0.4, 0.6, 0.8, 1.0))})
    rows, panels = [], []
    for task in tqdm(tasks, desc="demo tasks", disable=not progress):
        default = evaluate_params(
            spec, mapping.base_params, family, task, episodes=episodes, seed=seed + 1
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tuned_model = adapt(mapping, task=task, seed=seed)
            # Rollouts as long as one step between marks, so PPO from scratch gets the
            # same budget as the fine-tune (SB3 always finishes a rollout).
            rollout = max(1, marks[1] // recipe.n_envs)
            settings = {
                **recipe.scratch,
                "n_steps": rollout,
                "batch_size": min(recipe.scratch.get("batch_size", 64), rollout * recipe.n_envs),
            }
            scratch_model = make_agent(
                family, task, mapping.arch, settings, n_envs=recipe.n_envs, seed=seed
            )
        tuned = learning_curve(
            tuned_model, spec, family, task, checkpoints=marks, episodes=episodes, seed=seed + 1
        )
        scratch = learning_curve(
            scratch_model, spec, family, task, checkpoints=marks, episodes=episodes, seed=seed + 1
        )
        rows.append(
            {
                "task": task,
                "default_expert": default,
                "zero_shot": tuned[0][1],
                "fine_tuned": tuned[-1][1],
                "ppo_scratch": scratch[-1][1],
                "fine_tune_curve": tuned,
                "scratch_curve": scratch,
            }
        )
        panels.append(
            {
                "title": ", ".join(f"{k}={v:.2f}" for k, v in task.items()),
                "curves": {"fine-tune from prediction": tuned, "PPO from scratch": scratch},
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
        f"| task | default-task expert | zero-shot | fine-tuned ({steps} steps) "
        f"| PPO from scratch ({steps} steps) |\n|---|---|---|---|---|"
    )
    lines = [header] + [
        f"| {', '.join(f'{k}={v:.2f}' for k, v in r['task'].items())} | "
        f"{r['default_expert']:.1f} | {r['zero_shot']:.1f} | {r['fine_tuned']:.1f} | "
        f"{r['ppo_scratch']:.1f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    result = {
        "family": mapping.family_name,
        "steps": steps,
        "episodes": episodes,
        "rows": rows,
        "table": table,
        "plot": str(plot),
    }
    write_json(out_dir / "demo.json", result)
    return result
