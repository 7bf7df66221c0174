"""Scores against SAC oracles while the benchmark's SAC runs are under way.

The SAC oracle runs of ``meta-rl benchmark HalfCheetahVel --sac-budget 0.1`` take about
half an hour per test task here and are cached one by one in ``<split>-oracles.json``.
This script reads the runs finished so far and re-scores, on those tasks only, the
published per-task returns of a benchmark that had PPO alone as its oracle (the same test
tasks, episode seeds and random returns):

    python docs/benchmarks/halfcheetahvel-oracle/sac_scores.py \\
        docs/benchmarks/halfcheetahvel-td3-sac docs/benchmarks/halfcheetahvel-td3

The oracle of a task is the better of PPO's best point and SAC's end, as in the benchmark.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meta_rl.benchmarks.results import bootstrap_ci
from meta_rl.evaluation import normalised_score

METHODS = {
    "mapping": lambda row: row["fine_tune_curve"][0][1],
    "context PPO": lambda row: row["context"],
    "MAML after one step": lambda row: row["maml_after"],
}


def sac_returns(folder: Path, split: str) -> dict[float, float]:
    """Target velocity -> SAC's final return, for the SAC runs finished in ``folder``."""
    path = folder / f"{split}-oracles.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    return {
        run["task"]["target_velocity"]: run["return"]
        for key, run in runs.items()
        if key.startswith("sac-")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("oracles", type=Path, help="folder of the benchmark with SAC runs")
    parser.add_argument("published", type=Path, help="folder of the PPO-oracle benchmark")
    args = parser.parse_args()
    for split in ("interpolation", "extrapolation"):
        sac = sac_returns(args.oracles, split)
        if not sac:
            print(f"{split}: no SAC run finished yet")
            continue
        scores: dict[str, list[float]] = {name: [] for name in METHODS}
        raw: dict[str, list[float]] = {name: [] for name in METHODS}
        oracles = []
        for seed_dir in sorted(args.published.glob(f"{split}-seed*")):
            for row in json.loads((seed_dir / "results.json").read_text())["rows"]:
                target = row["task"]["target_velocity"]
                if target not in sac:
                    continue
                oracle = max(row["oracle_ppo"], sac[target])
                oracles.append(oracle)
                for name, value in METHODS.items():
                    ret = value(row)
                    raw[name].append(ret)
                    scores[name].append(normalised_score(ret, row["random"], oracle))
        n_seeds = len(list(args.published.glob(f"{split}-seed*")))
        print(
            f"{split}: {len(sac)} test tasks with SAC finished "
            f"({', '.join(f'{t:.3f} m/s: {r:.1f}' for t, r in sorted(sac.items()))}), "
            f"x {n_seeds} seeds; oracle mean {np.mean(oracles):.1f}"
        )
        for name in METHODS:
            by_seed = np.array(scores[name]).reshape(n_seeds, -1).tolist()
            print(
                f"  {name}: score {bootstrap_ci(by_seed).format(digits=3)} "
                f"(per task-seed {min(scores[name]):.3f} to {max(scores[name]):.3f}), "
                f"return {np.mean(raw[name]):.1f}"
            )
        mapping = np.array(scores["mapping"])
        for name in list(METHODS)[1:]:
            ahead = int(np.sum(mapping > np.array(scores[name])))
            margin = float(np.min(mapping - np.array(scores[name])))
            print(
                f"  mapping ahead of {name} on {ahead} of {len(mapping)} task-seeds "
                f"(smallest margin {margin:+.3f})"
            )


if __name__ == "__main__":
    main()
