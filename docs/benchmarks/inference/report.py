"""Known task against inferred task, on the held-out test tasks of each shipped mapping.

For every test task of a shipped mapping: the zero-shot return of the prediction for the
task's own descriptor, and of the prediction for the descriptor that a probe of the env
infers (the task hidden), with the benchmark's evaluation episodes and seeds (the probe's
too), and of an ``InferringAgent`` that infers the task from its own transitions while it
acts, with no probe. Scores are normalised with the random and oracle returns that the
family's published benchmark measured on the same tasks (seed 0 of its interpolation
split). Writes ``results.md`` and ``results.json`` beside this file.

    python docs/benchmarks/inference/report.py [--steps 50 100 200]

``--runs FOLDER`` scores instead the mappings of a benchmark's ``interpolation-seed<k>``
runs (each given an inference model, as the benchmark gives one, if it has none), against
the reference rows of their own seed:

    python docs/benchmarks/inference/report.py --runs docs/benchmarks/pendulum-finetune/seeds \
        --suite pendulum-td3 --out seeds
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from meta_rl.agents import InferringAgent, infer_task
from meta_rl.agents.infer import probe_seed
from meta_rl.evaluation import evaluate_params
from meta_rl.mapping.checkpoint import TrainedMapping

HERE = Path(__file__).resolve().parent
EVERY = 20
"""Env steps between the inferences of the agent that infers while it acts."""
SUITES = {
    "pendulum": "pendulum-td3",
    "cartpole": "cartpole-suite",
    "acrobot": "acrobot-suite",
    "mountaincarcontinuous": "mountaincar-suite",
}
"""Each shipped mapping and the benchmark folder whose seed-0 interpolation rows hold its
test tasks' random and oracle returns."""


def _reference(suite: str, seed: int = 0) -> list[dict]:
    data = json.loads((HERE.parent / suite / "results.json").read_text())
    return [r for r in data["tasks"]["interpolation"] if r.get("seed") == seed]


def _match(task: dict, rows: list[dict]) -> dict:
    return next(r for r in rows if all(abs(r["task"][k] - v) < 1e-9 for k, v in task.items()))


def family_report(
    name: str, steps: list[int], episodes: int, suite: str | None = None, seed: int = 0
) -> dict:
    trained = TrainedMapping.load(name)
    rows = _reference(suite or SUITES[name], seed)
    out = {"mapping": name, "family": trained.family_name, "seed": seed, "tasks": []}
    started = time.time()
    for task in trained.info["split"]["test"]:
        ref = _match(task, rows)

        def score(value: float, ref: dict = ref) -> float | None:
            if not ref["oracle"] > ref["random"]:  # undefined, as in the benchmark
                return None
            return (value - ref["random"]) / (ref["oracle"] - ref["random"])

        def returns(params: torch.Tensor, task: dict = task) -> float:
            return evaluate_params(
                trained.spec, params, trained.family, task, episodes=episodes, seed=seed + 1
            )

        known = returns(trained.predict(task))
        row = {"task": task, "known": known, "known_score": score(known), "inferred": {}}
        for n in steps:
            belief = infer_task(trained, task=task, steps=n, seed=probe_seed(seed + 1))
            value = returns(trained.predict_descriptor(belief.descriptor))
            row["inferred"][str(n)] = {
                "return": value,
                "score": score(value),
                "task": belief.task,
            }
        # No probe: the agent acts from the first step and infers from its own transitions
        # every EVERY steps, the evidence carried over the task's episodes (same resets).
        env = trained.family.make(task=task)
        agent = InferringAgent(trained, env, every=EVERY)
        value = float(np.mean([agent.run_episode(seed + 1 + i) for i in range(episodes)]))
        env.close()
        row["acting"] = {"return": value, "score": score(value), "every": EVERY}
        out["tasks"].append(row)
    defined = [r for r in out["tasks"] if r["known_score"] is not None]
    out["scored_tasks"] = len(defined)
    out["known_score"] = float(np.mean([r["known_score"] for r in defined]))
    out["inferred_score"] = {
        str(n): float(np.mean([r["inferred"][str(n)]["score"] for r in defined])) for n in steps
    }
    out["acting_score"] = float(np.mean([r["acting"]["score"] for r in defined]))
    out["identifiability"] = trained.inference.report["features"]
    out["seconds"] = round(time.time() - started, 1)
    return out


def markdown(reports: list[dict], steps: list[int], episodes: int) -> str:
    lines = [
        "Zero-shot normalised score on each shipped mapping's held-out test tasks "
        f"({episodes} episodes per task; a task whose oracle did not beat random is left "
        "out, as in the benchmark), with the task known, with it inferred from a probe "
        "of the given env steps (the probe's steps come on top of the episodes), and "
        f"inferred while acting (`InferringAgent`, every {EVERY} steps, no probe: the "
        "evidence of a task's episodes carries over, the first one starts from the "
        "default task's prediction).",
        "",
        "| mapping | tasks | known task | "
        + " | ".join(f"inferred, {n}-step probe" for n in steps)
        + " | inferred while acting |",
        "|---|---|---|" + "---|" * (len(steps) + 1),
    ]
    for r in reports:
        known = r["known_score"]
        inferred = [r["inferred_score"][str(n)] for n in steps] + [r["acting_score"]]
        cells = [f"{v:.3f} ({v - known:+.3f})" for v in inferred]
        name = Path(r["mapping"]).parent.name if "/" in r["mapping"] else r["mapping"]
        head = f"| `{name}` | {r['scored_tasks']} | {r['known_score']:.3f} | "
        lines.append(head + " | ".join(cells) + " |")
    if len({r["family"] for r in reports}) == 1 and len(reports) > 1:  # seeds of one family
        known = float(np.mean([r["known_score"] for r in reports]))
        means = [float(np.mean([r["inferred_score"][str(n)] for r in reports])) for n in steps]
        means.append(float(np.mean([r["acting_score"] for r in reports])))
        cells = [f"**{v:.3f}** ({v - known:+.3f})" for v in means]
        tasks = sum(r["scored_tasks"] for r in reports)
        lines.append(
            f"| mean of the {len(reports)} seeds | {tasks} | **{known:.3f}** | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "What a 200-step probe identifies, on the inference model's held-out training-region "
        "tasks (R^2: the share of the feature's spread the belief explains; RMSE in "
        "descriptor units, where the bounds are [-1, 1]):",
        "",
        "| mapping | feature | R^2 | RMSE | identified |",
        "|---|---|---|---|---|",
    ]
    for r in reports:
        for feature, v in r["identifiability"].items():
            lines.append(
                f"| `{Path(r['mapping']).parent.name if '/' in r['mapping'] else r['mapping']}` "
                f"| `{feature}` | {v['r2']:.2f} | {v['rmse']:.3f} | "
                f"{'yes' if v['identified'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--mappings", nargs="+", default=list(SUITES))
    parser.add_argument("--runs", type=Path, help="a benchmark folder: score its seeds' runs")
    parser.add_argument("--suite", help="with --runs: the folder of the reference rows")
    parser.add_argument("--out", default=".", help="sub-folder of this one for the report")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.runs is None:
        reports = [family_report(name, args.steps, args.episodes) for name in args.mappings]
    else:
        from meta_rl.benchmarks.benchmark import with_inference

        reports = []
        for run in sorted(args.runs.glob("interpolation-seed*")):
            seed = int(run.name.rsplit("seed", 1)[1])
            path = next(run.glob("mapping-*.safetensors"))
            with_inference(path, seed)
            reports.append(family_report(str(path), args.steps, args.episodes, args.suite, seed))
    out = HERE / args.out
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(reports, indent=1) + "\n")
    (out / "results.md").write_text(markdown(reports, args.steps, args.episodes))
    print(markdown(reports, args.steps, args.episodes))


if __name__ == "__main__":
    main()
