"""A fine-tune's curve on HalfCheetahVel's test tasks, from the published `td3` mappings.

The benchmark curves the fine-tune its checkpoints' recipe names; this script curves any
candidate in `meta-rl select-finetune`'s syntax (``sac:head_gain=null``) from the same
mappings, on the same test tasks, with the benchmark's fine-tune and episode seeds, and
scores it as the benchmark does (normalised by the task's random return and oracle; the
oracle is the published PPO one, or the better of it and a finished SAC oracle run):

    python docs/benchmarks/halfcheetahvel-finetune/test_tasks.py "sac:head_gain=null" \\
        --published docs/benchmarks/halfcheetahvel-td3 \\
        --sac-oracles docs/benchmarks/halfcheetahvel-td3-sac \\
        --out docs/benchmarks/halfcheetahvel-finetune/test --workers 2

The curves are cached in ``<out>/cache.json`` as each finishes (a rerun only reports);
the report goes to ``<out>/<candidate>.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meta_rl.benchmarks.finetune import cached_jobs, finetune_job, parse_candidate
from meta_rl.evaluation import normalised_score
from meta_rl.infra.files import write_text
from meta_rl.infra.keys import cache_key

POINTS = (0, 1000, 2000, 5000)


def sac_oracles(folder: Path | None, split: str) -> dict[float, float]:
    """Target velocity -> the finished SAC oracle run's return."""
    path = folder / f"{split}-oracles.json" if folder else None
    runs = json.loads(path.read_text()) if path and path.exists() else {}
    return {
        r["task"]["target_velocity"]: r["return"] for k, r in runs.items() if k.startswith("sac-")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidate", help='a fine-tune, "algo" or "algo:key=value,..."')
    parser.add_argument("--published", type=Path, required=True)
    parser.add_argument("--sac-oracles", type=Path, default=None)
    parser.add_argument("--splits", nargs="+", default=["interpolation", "extrapolation"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    text, algo, settings = parse_candidate(args.candidate)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs, rows = [], []
    for split in args.splits:
        sac = sac_oracles(args.sac_oracles, split)
        for seed_dir in sorted(args.published.glob(f"{split}-seed*")):
            seed = int(seed_dir.name.rsplit("seed", 1)[1])
            (checkpoint,) = seed_dir.glob("mapping-*.safetensors")
            published = json.loads((seed_dir / "results.json").read_text())
            for row in published["rows"]:
                task, episodes = row["task"], published["episodes"]
                spec = [str(checkpoint), task, algo, settings, POINTS, episodes, seed]
                jobs.append(
                    (
                        f"{text}-{cache_key(spec)}",
                        finetune_job,
                        (
                            str(checkpoint),
                            task,
                            "prediction",
                            algo,
                            settings,
                            POINTS,
                            episodes,
                            seed,
                        ),
                    )
                )
                oracle = max(row["oracle"], sac.get(task["target_velocity"], -np.inf))
                rows.append((split, row, oracle, task["target_velocity"] in sac))
    curves = cached_jobs(jobs, args.out / "cache.json", args.workers)
    lines = [
        f"`{text}` from the published mappings ({args.published}), normalised score "
        "(return) at each point, mean over the split's test tasks and seeds: zero-shot, "
        "the curve's first point (for SAC and TD3, after the warm start, at its env "
        "steps), then at each budget (a warm start's steps included).",
        "",
        "| split | oracle | task-seeds | zero-shot | first point | "
        + " | ".join(f"{p:,}" for p in POINTS[1:])
        + " | lift by 5,000 |",
        "|---|---|---|" + "---|" * (len(POINTS) + 2),
    ]
    for split in args.splits:
        for label, with_sac in (("published", False), ("with SAC where run", True)):
            picked = [
                (row, oracle if with_sac else row["oracle"], curve)
                for (s, row, oracle, has_sac), curve in zip(rows, curves, strict=True)
                if s == split and (has_sac or not with_sac)
            ]
            if not picked:
                continue
            # Zero-shot (the published curve's start), then the curve: its first point is
            # the converted policy after the warm start.
            returns = np.array(
                [[row["fine_tune_curve"][0][1]] + [r for _, r in curve] for row, _, curve in picked]
            )
            scores = np.array(
                [
                    [normalised_score(r, row["random"], oracle) for r in rets]
                    for (row, oracle, _), rets in zip(picked, returns, strict=True)
                ]
            )
            cells = [
                f"{s:.3f} ({r:.1f})" for s, r in zip(scores.mean(0), returns.mean(0), strict=True)
            ]
            lift = scores[:, -1] - scores[:, 0]
            lines.append(
                f"| {split} | {label} | {len(picked)} | "
                + " | ".join(cells)
                + f" | {lift.mean():+.3f} |"
            )
    report = "\n".join(lines) + "\n"
    write_text(
        args.out / f"{text.replace(':', '-').replace('=', '-').replace(',', '-')}.md", report
    )
    print(report)


if __name__ == "__main__":
    main()
