"""Paired differences between the zero-shot scores of benchmark runs, task by task.

The README's "paired" figures for `meta-rl benchmark` folders: the mapping minus the
context-conditioned policy of the same folder, and, given a second folder of the same
family and split (the same test tasks and seeds), the first folder's mapping minus the
second's. Each is a mean over seeds x test tasks with a 95% two-level bootstrap interval.
Run from the repository root, for example:

    python docs/benchmarks/paired.py docs/benchmarks/pendulum-td3 interpolation
    python docs/benchmarks/paired.py docs/benchmarks/pendulum-td3 interpolation \
        --against docs/benchmarks/pendulum-rl
"""

import argparse
import json
from pathlib import Path

from meta_rl.suite import bootstrap_ci


def seed_rows(folder: Path, split: str) -> list[list[dict]]:
    """Each seed's per-task rows of ``folder``'s ``split``, seed by seed."""
    runs = sorted(folder.glob(f"{split}-seed*/results.json"), key=lambda p: p.parent.name)
    if not runs:
        raise SystemExit(f"no {split}-seed*/results.json in {folder}")
    return [json.loads(path.read_text())["rows"] for path in runs]


def zero_shot(rows: list[dict]) -> list[float]:
    return [row["fine_tune_scores"][0][1] for row in rows]


def show(label: str, by_seed: list[list[float]]) -> None:
    ci = bootstrap_ci(by_seed)
    print(f"{label}: {ci['mean']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("split", choices=("interpolation", "extrapolation"))
    parser.add_argument("--against", type=Path, help="a second benchmark folder")
    args = parser.parse_args()
    first = seed_rows(args.folder, args.split)
    print("mapping by seed:", ", ".join(f"{sum(zero_shot(r)) / len(r):.3f}" for r in first))
    print(
        "context policy by seed:",
        ", ".join(f"{sum(x['context_score'] for x in r) / len(r):.3f}" for r in first),
    )
    show(
        "mapping minus context policy, paired",
        [[m - x["context_score"] for m, x in zip(zero_shot(r), r, strict=True)] for r in first],
    )
    if args.against is not None:
        second = seed_rows(args.against, args.split)
        if len(second) != len(first):
            raise SystemExit("the two folders hold different numbers of seeds")
        for a, b in zip(first, second, strict=True):
            if [x["task"] for x in a] != [x["task"] for x in b]:
                raise SystemExit("the two folders' test tasks differ")
        show(
            f"mapping minus {args.against}'s mapping, paired",
            [
                [x - y for x, y in zip(zero_shot(a), zero_shot(b), strict=True)]
                for a, b in zip(first, second, strict=True)
            ],
        )


if __name__ == "__main__":
    main()
