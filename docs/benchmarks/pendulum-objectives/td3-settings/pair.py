"""Two td3 variants scored by compare.py, paired by seed, task and episode seeds. Run from
the repository root, for example:

    python docs/benchmarks/pendulum-objectives/td3-settings/pair.py \
        updates025-average1e-3 updates025

It prints each seed's mean validation return of both, and the first minus the second with
a 95% two-level bootstrap interval.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from meta_rl.benchmarks.results import bootstrap_ci

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--report-dir", type=Path, default=HERE, help="compare.py's")
    args = parser.parse_args()
    first, second = (
        json.loads((args.report_dir / f"{n}.json").read_text()) for n in (args.first, args.second)
    )
    diffs = []
    for a, b in zip(first["seeds"], second["seeds"], strict=True):
        if a["seed"] != b["seed"]:
            raise SystemExit("the two reports hold different seeds")
        if a.get("base_returns") != b.get("base_returns"):
            raise SystemExit(f"seed {a['seed']}: the two variants started from other bases")
        diffs.append((np.array(a["variant_returns"]) - np.array(b["variant_returns"])).tolist())
        print(f"seed {a['seed']}: {a['variant']:.1f} against {b['variant']:.1f}")
    paired = bootstrap_ci(diffs)
    print(f"{args.first} minus {args.second}, paired: {paired.format(digits=1, sign=True)}")


if __name__ == "__main__":
    main()
