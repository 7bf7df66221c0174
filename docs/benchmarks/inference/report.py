"""Known task against inferred task, on the held-out test tasks of each shipped mapping.

For every test task of a shipped mapping: the zero-shot return of the prediction for the
task's own descriptor, and of the prediction for the descriptor that a probe of the env
infers (the task hidden), with the benchmark's evaluation episodes and seeds. Scores are
normalised with the random and oracle returns that the family's published benchmark
measured on the same tasks (seed 0 of its interpolation split). Writes ``results.md`` and
``results.json`` beside this file.

    python docs/benchmarks/inference/report.py [--steps 50 100 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from meta_rl.agents import infer_task
from meta_rl.evaluation import evaluate_params
from meta_rl.mapping.checkpoint import TrainedMapping

HERE = Path(__file__).resolve().parent
SUITES = {
    "pendulum": "pendulum-td3",
    "cartpole": "cartpole-suite",
    "acrobot": "acrobot-suite",
    "mountaincarcontinuous": "mountaincar-suite",
}
"""Each shipped mapping and the benchmark folder whose seed-0 interpolation rows hold its
test tasks' random and oracle returns."""


def _reference(suite: str) -> list[dict]:
    data = json.loads((HERE.parent / suite / "results.json").read_text())
    return [r for r in data["tasks"]["interpolation"] if r.get("seed") == 0]


def _match(task: dict, rows: list[dict]) -> dict:
    return next(r for r in rows if all(abs(r["task"][k] - v) < 1e-9 for k, v in task.items()))


def family_report(name: str, steps: list[int], episodes: int) -> dict:
    trained = TrainedMapping.load(name)
    rows = _reference(SUITES[name])
    out = {"mapping": name, "family": trained.family_name, "tasks": []}
    started = time.time()
    for task in trained.info["split"]["test"]:
        ref = _match(task, rows)

        def score(value: float, ref: dict = ref) -> float:
            return (value - ref["random"]) / (ref["oracle"] - ref["random"])

        def returns(params: torch.Tensor, task: dict = task) -> float:
            return evaluate_params(
                trained.spec, params, trained.family, task, episodes=episodes, seed=1
            )

        known = returns(trained.predict(task))
        row = {"task": task, "known": known, "known_score": score(known), "inferred": {}}
        for n in steps:
            belief = infer_task(trained, task=task, steps=n, seed=2)
            value = returns(trained.predict_descriptor(belief.descriptor))
            row["inferred"][str(n)] = {
                "return": value,
                "score": score(value),
                "task": belief.task,
            }
        out["tasks"].append(row)
    out["known_score"] = float(np.mean([r["known_score"] for r in out["tasks"]]))
    out["inferred_score"] = {
        str(n): float(np.mean([r["inferred"][str(n)]["score"] for r in out["tasks"]]))
        for n in steps
    }
    out["identifiability"] = trained.inference.report["features"]
    out["seconds"] = round(time.time() - started, 1)
    return out


def markdown(reports: list[dict], steps: list[int], episodes: int) -> str:
    lines = [
        "Zero-shot normalised score on each shipped mapping's 6 held-out test tasks "
        f"({episodes} episodes per task), with the task known and with it inferred from a "
        "probe of the given env steps (the probe's steps come on top of the episodes).",
        "",
        "| mapping | known task | " + " | ".join(f"inferred, {n}-step probe" for n in steps) + " |",
        "|---|---|" + "---|" * len(steps),
    ]
    for r in reports:
        known = r["known_score"]
        inferred = [r["inferred_score"][str(n)] for n in steps]
        cells = [f"{v:.3f} ({v - known:+.3f})" for v in inferred]
        lines.append(f"| `{r['mapping']}` | {r['known_score']:.3f} | " + " | ".join(cells) + " |")
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
                f"| `{r['mapping']}` | `{feature}` | {v['r2']:.2f} | {v['rmse']:.3f} | "
                f"{'yes' if v['identified'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--mappings", nargs="+", default=list(SUITES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    reports = [family_report(name, args.steps, args.episodes) for name in args.mappings]
    (HERE / "results.json").write_text(json.dumps(reports, indent=1) + "\n")
    (HERE / "results.md").write_text(markdown(reports, args.steps, args.episodes))
    print(markdown(reports, args.steps, args.episodes))


if __name__ == "__main__":
    main()
