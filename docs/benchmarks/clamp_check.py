"""Should a family's mappings clamp the descriptor beyond their training region?

For each extrapolation run folder given, loads its mapping and scores, on tasks drawn from
the split's held-out region with another seed than the benchmark's (777 by default: never
the test tasks, which the benchmark draws with its split seed), the zero-shot return of the
prediction for the task's own descriptor ("raw": the mapping's own extrapolation), of the
prediction for the descriptor clamped to the training region ("region": the nearest task
the mapping trained on), and of the base policy ("base"). A family's recipe records the
winner as its ``clamp``. Run from the repository root, for instance:

    python docs/benchmarks/clamp_check.py \\
        docs/benchmarks/halfcheetahvel-context-sac/extrapolation-seed0 \\
        --out docs/benchmarks/halfcheetahvel-context-sac/clamp_check.json

It writes the per-task returns to ``--out`` and prints each mapping's means and the
paired difference raw minus region.
"""

import argparse
from pathlib import Path

import numpy as np

from meta_rl.evaluation import evaluate_params
from meta_rl.infra.files import write_json
from meta_rl.infra.threads import torch_threads
from meta_rl.mapping.checkpoint import TrainedMapping


def check(run: Path, n_tasks: int, seed: int, episodes: int) -> list[dict]:
    """Per task beyond ``run``'s training region: the task and its three returns."""
    (path,) = sorted(run.glob("mapping-*.safetensors"))
    mapping = TrainedMapping.load(path)
    if mapping.info.get("split_kind") != "extrapolation":
        raise SystemExit(f"{run} is not an extrapolation run: it has no held-out region")
    test = mapping.info["split"]["test"]
    tasks = mapping.task_space.split(0, n_tasks, kind="extrapolation", seed=seed).test
    if any(task in test for task in tasks):
        raise SystemExit(f"seed {seed} draws one of {run}'s test tasks: choose another seed")
    params = {
        "raw": lambda task: mapping.predict(task, extrapolate=True, clamp=False),
        "region": lambda task: mapping.predict(task, extrapolate=True, clamp=True),
        "base": lambda task: mapping.base_params,
    }
    return [
        {"task": task}
        | {
            name: evaluate_params(
                mapping.spec, predict(task), mapping.family, task, episodes=episodes, seed=1
            )
            for name, predict in params.items()
        }
        for task in tasks
    ]


@torch_threads(1)
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="extrapolation run folders")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--tasks", type=int, default=12, help="tasks per run (default 12)")
    parser.add_argument("--seed", type=int, default=777, help="seed of their draw")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task")
    args = parser.parse_args()
    out = {}
    for run in args.runs:
        rows = check(run, args.tasks, args.seed, args.episodes)
        out[str(run)] = rows
        raw, region, base = (np.array([row[k] for row in rows]) for k in ("raw", "region", "base"))
        diff = raw - region
        print(
            f"{run}: raw {raw.mean():.1f}, region {region.mean():.1f}, base {base.mean():.1f}; "
            f"raw - region {diff.mean():+.1f} (raw ahead on {int((diff > 0).sum())} of {len(diff)})"
        )
    write_json(args.out, out)


if __name__ == "__main__":
    main()
