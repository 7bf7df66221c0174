"""Runs a benchmark split's oracle runs alone, into the benchmark's own oracle cache.

``meta-rl benchmark`` trains a split's mappings before it scores them, and trains each
task's oracle once for every seed (cached in ``<out-dir>/<split>-oracles.json``). Where
the mappings are already scored (a published run that had PPO alone as its oracle), this
script runs the oracle's missing candidates, SAC's included, on the published run's test
tasks, with the keys the benchmark would use, so that the benchmark, rerun with the same
settings, finds them done and ``sac_scores.py`` can re-score the published returns:

    python docs/benchmarks/halfcheetahvel-oracle/sac_oracles.py HalfCheetahVel \\
        docs/benchmarks/halfcheetahvel-td3 docs/benchmarks/halfcheetahvel-td3-sac \\
        --split extrapolation --budget 0.1 --oracle-budget 0.2 --sac-budget 0.1 --workers 1

Runs finished before a stop are kept; the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from meta_rl.benchmarks.score import (
    ScoreConfig,
    evaluation_episodes,
    oracle_recipe,
    oracles,
)
from meta_rl.envs import get_family
from meta_rl.mapping.policy import PolicyArch
from meta_rl.training.recipes import recipe_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family")
    parser.add_argument("published", type=Path, help="folder of the scored benchmark")
    parser.add_argument("out_dir", type=Path, help="benchmark folder of the oracle cache")
    parser.add_argument("--split", default="extrapolation")
    parser.add_argument("--budget", default="full")
    parser.add_argument("--oracle-budget", default=None)
    parser.add_argument("--sac-budget", default=None)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    seed_dirs = sorted(args.published.glob(f"{args.split}-seed*"))
    if not seed_dirs:
        raise SystemExit(f"{args.published} holds no {args.split}-seed* folder")
    published = json.loads((seed_dirs[0] / "results.json").read_text())
    if published["family"] != args.family:
        raise SystemExit(f"{args.published} scores {published['family']}, not {args.family}")
    tasks = [row["task"] for row in published["rows"]]
    recipe = recipe_for(args.family)
    config = ScoreConfig(
        checkpoint=published["checkpoint"],
        episodes=published["episodes"],  # the scored run's, as its oracle keys hold them
        out_dir=args.out_dir,
        budget=args.budget,
        oracle_budget=args.oracle_budget,
        sac_budget=args.sac_budget,
        oracle_seed=args.split_seed,
        workers=args.workers,
        oracle_cache=args.out_dir / f"{args.split}-oracles.json",
    )
    probe = get_family(args.family).make()
    try:
        arch = PolicyArch.for_env(
            probe, pi=recipe.pi, vf=recipe.vf, log_std_init=recipe.log_std_init
        )
    finally:
        probe.close()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scaled = oracle_recipe(args.family, config)
    results = oracles(args.family, arch, tasks, scaled, config, evaluation_episodes(config, recipe))
    print(f"{len(results)} tasks' oracles in {time.perf_counter() - start:.0f} s")
    for row in results:
        print(row["task"], "PPO", round(row["ppo"], 1), "SAC", row["sac"])


if __name__ == "__main__":
    main()
