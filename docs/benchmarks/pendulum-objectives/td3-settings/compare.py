"""Score a variant of td3's settings on Pendulum as `meta-rl select-objective` scores the
objectives (the same 24 validation tasks and episode seeds; test tasks untouched), paired
with the published td3 mappings of the same seeds (../selection). Run from the repository
root, for example:

    python docs/benchmarks/pendulum-objectives/td3-settings/compare.py \
        gamma099 '{"gamma": 0.99}' --seeds 1

The variant's mappings are cached in runs/td3-variants/NAME (a rerun only scores); the
comparison is written to NAME.json and NAME.md beside this script.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from meta_rl.benchmarks.results import bootstrap_ci
from meta_rl.benchmarks.selection import SelectionConfig, run_selection
from meta_rl.objectives.td3 import TD3Config

HERE = Path(__file__).parent
PUBLISHED = HERE.parent / "selection" / "results.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("settings", help="TD3Config fields as JSON, e.g. '{\"gamma\": 0.99}'")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="processes (0: this one)")
    args = parser.parse_args()
    if not 1 <= args.seeds <= 3:
        parser.error("--seeds must be 1 to 3: the published td3 mappings have seeds 0 to 2")
    settings = json.loads(args.settings)
    # One thread, as `meta-rl` runs: more threads change float sums, and so the bases and
    # mappings, which then no longer pair with the published ones.
    torch.set_num_threads(1)
    reference = json.loads(PUBLISHED.read_text())
    result = run_selection(
        SelectionConfig(
            family="Pendulum",
            objectives=("td3",),
            seeds=args.seeds,
            out_dir=Path("runs/td3-variants") / args.name,
            workdir=Path("runs"),
            train={"td3": TD3Config(**settings)},
            workers=args.workers,
        )
    )
    if result.val_tasks != reference["val_tasks"]:
        raise SystemExit("the validation tasks differ from the published comparison's")
    published_runs = {r["seed"]: r for r in reference["runs"] if r["objective"] == "td3"}
    for run in result.runs:
        # The default-task expert is the seed's base: the same returns on the same episodes
        # say that the variant started from the published run's base.
        theirs = published_runs[run.seed]["default_expert_returns"]
        if run.default_expert_returns != theirs:
            raise SystemExit(
                f"seed {run.seed}'s base is not the published one (its validation return "
                f"{np.mean(run.default_expert_returns):.1f}, the published base's "
                f"{np.mean(theirs):.1f}), so the pairing would compare different bases: "
                "delete runs/pendulum's cached bases and run again with this repository's "
                "pinned versions"
            )
    published = {seed: r["val_returns"] for seed, r in published_runs.items()}
    seeds = [
        {
            "seed": run.seed,
            "variant": float(np.mean(run.val_returns)),
            "published": float(np.mean(published[run.seed])),
            "variant_returns": run.val_returns,
        }
        for run in result.runs
    ]
    paired = bootstrap_ci(
        [
            (np.array(run.val_returns) - np.array(published[run.seed])).tolist()
            for run in result.runs
        ]
    )
    report = {
        "settings": settings,
        "variant": result.summary["td3"].val_return.to_json(),
        "variant_minus_published": paired.to_json(),
        "seeds": seeds,
    }
    (HERE / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"td3 with {settings} on Pendulum, {args.seeds} seed(s), 24 validation tasks:",
        "",
        "| seed | variant | published td3 |",
        "|---|---|---|",
        *(f"| {s['seed']} | {s['variant']:.1f} | {s['published']:.1f} |" for s in seeds),
        "",
        f"Variant minus published, paired: {paired.format(digits=1, sign=True)}",
    ]
    (HERE / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
