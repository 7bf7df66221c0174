"""Score a variant of td3's settings as `meta-rl select-objective` scores the objectives
(the same validation tasks, budget and episode seeds; test tasks untouched), paired with
the published td3 mappings of the same seeds; ``--objective`` scores another off-policy
objective (``sac``, say) the same way. Run from the repository root, for example:

    python docs/benchmarks/pendulum-objectives/td3-settings/compare.py \
        gamma099 '{"gamma": 0.99}' --seeds 1

The published comparison is Pendulum's (../selection) unless ``--published`` names another
``select-objective`` report (its family, budget and tasks are then used); the variant's
settings are the family recipe's ``off_policy`` ones with ``SETTINGS`` over them, and
``--recipe`` changes other fields of the family's recipe (its base policy's env steps,
say; every budget is then scaled by the published report's budget). Its
mappings are cached in runs/td3-variants/NAME (a rerun only scores); the comparison is
written to NAME.json and NAME.md beside this script, or in ``--report-dir``.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from meta_rl.benchmarks.results import bootstrap_ci
from meta_rl.benchmarks.selection import SelectionConfig, run_selection
from meta_rl.training.config import OFF_POLICY_CONFIGS, phase_settings
from meta_rl.training.recipes import recipe_for

HERE = Path(__file__).parent
PUBLISHED = HERE.parent / "selection" / "results.json"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("settings", help="the objective's fields as JSON, e.g. '{\"gamma\": 0.99}'")
    parser.add_argument(
        "--objective",
        default="td3",
        choices=sorted(OFF_POLICY_CONFIGS),
        help="the off-policy objective the variant trains (default td3; it is paired with "
        "the published td3 mappings either way)",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="processes (0: this one)")
    parser.add_argument("--published", type=Path, default=PUBLISHED)
    parser.add_argument("--report-dir", type=Path, default=HERE)
    parser.add_argument("--workdir", type=Path, default=Path("runs"), help="cache of bases")
    parser.add_argument(
        "--recipe",
        default="{}",
        help="Recipe fields over the family's as JSON, e.g. '{\"base_steps\": 100000}'",
    )
    args = parser.parse_args()
    reference = json.loads(args.published.read_text())
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    settings = json.loads(args.settings)
    family = reference["family"]
    objective = args.objective
    phase = phase_settings(
        OFF_POLICY_CONFIGS[objective], {**recipe_for(family).off_policy, **settings}
    )
    recipe_changes = json.loads(args.recipe)
    train: dict = {objective: phase}
    if recipe_changes:
        train["recipe"] = replace(recipe_for(family), **recipe_changes)
    # One thread, as `meta-rl` runs: more threads change float sums, and so the bases and
    # mappings, which then no longer pair with the published ones.
    torch.set_num_threads(1)
    result = run_selection(
        SelectionConfig(
            family=family,
            objectives=(objective,),
            seeds=args.seeds,
            split=reference["split"],
            split_seed=reference["split_seed"],
            val_tasks=len(reference["val_tasks"]),
            episodes=reference["episodes"],
            budget=reference["budget"],
            out_dir=Path("runs/td3-variants") / args.name,
            workdir=args.workdir,
            train=train,
            workers=args.workers,
        )
    )
    if result.val_tasks != reference["val_tasks"]:
        raise SystemExit("the validation tasks differ from the published comparison's")
    published_runs = {r["seed"]: r for r in reference["runs"] if r["objective"] == "td3"}
    # The default-task expert is the seed's base: the same returns on the same episodes say
    # that the variant started from the published run's base. A base trained since by other
    # code or versions makes the pairing meaningless: the variant is then reported alone,
    # to be paired (pair.py) with the reference settings run the same way.
    other_bases = [
        run.seed
        for run in result.runs
        if run.seed not in published_runs
        or run.default_expert_returns != published_runs[run.seed]["default_expert_returns"]
    ]
    published = {seed: r["val_returns"] for seed, r in published_runs.items()}
    seeds = [
        {
            "seed": run.seed,
            "variant": float(np.mean(run.val_returns)),
            "published": float(np.mean(published[run.seed])) if run.seed in published else None,
            "variant_returns": run.val_returns,
            "base_returns": run.default_expert_returns,
        }
        for run in result.runs
    ]
    paired = None
    if not other_bases:
        paired = bootstrap_ci(
            [
                (np.array(run.val_returns) - np.array(published[run.seed])).tolist()
                for run in result.runs
            ]
        )
    report = {
        "settings": settings,
        "recipe": recipe_changes,
        "objective": objective,
        "variant": result.summary[objective].val_return.to_json(),
        "variant_minus_published": paired.to_json() if paired else None,
        "seeds": seeds,
    }
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"{objective} with {settings}{f' (recipe {recipe_changes})' if recipe_changes else ''} "
        f"on {family}, {args.seeds} seed(s), "
        f"{len(reference['val_tasks'])} validation tasks:",
        "",
        "| seed | variant | published td3 |",
        "|---|---|---|",
        *(f"| {s['seed']} | {s['variant']:.1f} | {_number(s['published'])} |" for s in seeds),
        "",
        f"Variant minus published, paired: {paired.format(digits=1, sign=True)}"
        if paired
        else f"Not paired: the published td3 mappings of seeds {other_bases} were trained "
        "from other bases (the default-task expert's returns differ), or are not published; "
        "pair.py pairs this run with a run of the reference settings made here.",
    ]
    (args.report_dir / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
