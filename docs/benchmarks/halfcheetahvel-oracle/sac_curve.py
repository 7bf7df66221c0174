"""How fast SAC from scratch learns one HalfCheetahVel test task: the oracle's SAC run
(:func:`meta_rl.benchmarks.finetune.scratch_sac_job`, with the recipe's settings and the
benchmark's oracle seed and episodes), evaluated at ``--points`` env steps, each point
written to ``--out`` as soon as it is measured.

    python docs/benchmarks/halfcheetahvel-oracle/sac_curve.py --target 1.2352305827652355 \\
        --points 10000 20000 30000 40000 50000 60000

A rerun starts afresh and rewrites ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from meta_rl.benchmarks.finetune import scratch_sac_job
from meta_rl.infra.files import write_json
from meta_rl.infra.threads import torch_threads
from meta_rl.training.recipes import recipe_for

HERE = Path(__file__).resolve().parent


@torch_threads(1)
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, required=True, help="target velocity, m/s")
    parser.add_argument("--points", type=int, nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0, help="the benchmark's oracle seed")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "sac_curve.json")
    args = parser.parse_args()
    task = {"target_velocity": args.target}
    settings = recipe_for("HalfCheetahVel").sac
    record = {"task": task, "settings": settings, "seed": args.seed, "curve": []}
    start = time.perf_counter()

    def on_point(steps: int, mean_return: float) -> None:
        seconds = time.perf_counter() - start
        record["curve"].append({"steps": steps, "return": mean_return, "seconds": seconds})
        write_json(args.out, record)
        print(json.dumps(record["curve"][-1]), flush=True)

    scratch_sac_job(
        "HalfCheetahVel", task, settings, sorted(args.points), args.episodes, args.seed, on_point
    )


if __name__ == "__main__":
    main()
