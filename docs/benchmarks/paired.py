"""Paired differences between the zero-shot scores of benchmark runs, task by task.

The README's "paired" figures for `meta-rl benchmark` folders: the mapping minus the
context-conditioned policies of the same folder (PPO, and SAC where the runs trained it),
and, given a second folder of the same family and split (the same test tasks and seeds),
the first folder's mapping minus the second's. Each is a mean over seeds x test tasks with
a 95% two-level bootstrap interval; a task whose oracle is no better than random has no
score and is left out, as in the benchmark's means.
Run from the repository root, for example:

    python docs/benchmarks/paired.py docs/benchmarks/pendulum-td3 interpolation
    python docs/benchmarks/paired.py docs/benchmarks/pendulum-td3 interpolation \
        --against docs/benchmarks/pendulum-rl
"""

import argparse
import json
from pathlib import Path

from meta_rl.benchmarks.results import ScoreResult, TaskRow, bootstrap_ci


def seed_rows(folder: Path, split: str) -> list[list[TaskRow]]:
    """Each seed's per-task rows of ``folder``'s ``split``, seed by seed."""
    runs = sorted(folder.glob(f"{split}-seed*/results.json"), key=lambda p: p.parent.name)
    if not runs:
        raise SystemExit(f"no {split}-seed*/results.json in {folder}")
    return [ScoreResult.from_json(json.loads(path.read_text())).rows for path in runs]


def zero_shot(rows: list[TaskRow]) -> list[float | None]:
    return [row.zero_shot_score for row in rows]


def minus(a: list[float | None], b: list[float | None]) -> list[float | None]:
    """Task by task; ``None`` where either has no score."""
    return [None if x is None or y is None else x - y for x, y in zip(a, b, strict=True)]


def mean(scores: list[float | None]) -> float:
    defined = [s for s in scores if s is not None]
    return sum(defined) / len(defined)


def show(label: str, by_seed: list[list[float | None]]) -> None:
    print(f"{label}: {bootstrap_ci(by_seed).format(sign=True)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("split", choices=("interpolation", "extrapolation"))
    parser.add_argument("--against", type=Path, help="a second benchmark folder")
    args = parser.parse_args()
    first = seed_rows(args.folder, args.split)
    print("mapping by seed:", ", ".join(f"{mean(zero_shot(r)):.3f}" for r in first))
    for label, field in (("context policy", "context_score"), ("context SAC", "context_sac_score")):
        baseline = [[getattr(x, field) for x in r] for r in first]
        if not any(s is not None for seed in baseline for s in seed):
            continue  # the folder's runs left this baseline out
        print(f"{label} by seed:", ", ".join(f"{mean(b):.3f}" for b in baseline))
        show(
            f"mapping minus {label}, paired",
            [minus(zero_shot(r), b) for r, b in zip(first, baseline, strict=True)],
        )
    if args.against is not None:
        second = seed_rows(args.against, args.split)
        if len(second) != len(first):
            raise SystemExit("the two folders hold different numbers of seeds")
        for a, b in zip(first, second, strict=True):
            if [x.task for x in a] != [x.task for x in b]:
                raise SystemExit("the two folders' test tasks differ")
        show(
            f"mapping minus {args.against}'s mapping, paired",
            [minus(zero_shot(a), zero_shot(b)) for a, b in zip(first, second, strict=True)],
        )


if __name__ == "__main__":
    main()
