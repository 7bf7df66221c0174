"""Zero-shot scores of other mappings on a benchmark folder's test tasks, beside its rows.

For each ``<split>-seed<n>/`` of a ``meta-rl benchmark`` folder, every mapping file there
other than the one its ``results.json`` scored (a longer run of the same seed, say) is
evaluated on that seed's test tasks with the benchmark's own episode seeds, and its
normalised scores (against the folder's oracles) are set beside the scored mapping's and
the context-conditioned baselines' of the same rows: means over seeds x tasks with 95%
two-level bootstrap intervals, and paired differences. The baselines keep the env steps
they were trained for, which the report prints. Run from the repository root, e.g.:

    python docs/benchmarks/rescore.py docs/benchmarks/halfcheetahvel-averaged interpolation
"""

import argparse
import json
from pathlib import Path

import torch

from meta_rl.benchmarks.results import ScoreResult, bootstrap_ci
from meta_rl.evaluation import evaluate_params, normalised_score
from meta_rl.mapping.checkpoint import TrainedMapping

BASELINES = (("context policy", "context"), ("context SAC", "context_sac"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("split", choices=("interpolation", "extrapolation"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the benchmark evaluates: the same numbers
    runs = sorted(args.folder.glob(f"{args.split}-seed*/results.json"))
    if not runs:
        raise SystemExit(f"no {args.split}-seed*/results.json in {args.folder}")
    new, old, returns = [], [], {"other": [], "scored": []}
    baselines: dict[str, list[list[float | None]]] = {name: [] for _, name in BASELINES}
    for path in runs:
        result = ScoreResult.from_json(json.loads(path.read_text()))
        seed = int(path.parent.name.rsplit("seed", 1)[1])
        scored = Path(result.checkpoint).name
        others = [p for p in path.parent.glob("mapping-*.safetensors") if p.name != scored]
        if len(others) != 1:
            raise SystemExit(
                f"{path.parent}: expected one mapping besides the scored one, found "
                f"{[p.name for p in others]}"
            )
        mapping = TrainedMapping.load(others[0])
        print(f"{path.parent.name}: {others[0].name} ({mapping.info['env_steps']} env steps)")
        scores = []
        for row in result.rows:
            value = evaluate_params(
                mapping.spec,
                mapping.predict(row.task, extrapolate=True),
                mapping.family,
                row.task,
                episodes=result.episodes,
                seed=seed + 1,
            )
            defined = row.oracle > row.random
            scores.append(normalised_score(value, row.random, row.oracle) if defined else None)
            returns["other"].append(value)
            returns["scored"].append(row.fine_tune_curve[0][1])
        new.append(scores)
        old.append([row.zero_shot_score for row in result.rows])
        for _, name in BASELINES:
            baselines[name].append([getattr(row, f"{name}_score") for row in result.rows])
        steps = {n: getattr(result.rows[0], f"{n}_steps") for _, n in BASELINES}
        print("  baselines' env steps:", ", ".join(f"{n} {s}" for n, s in steps.items() if s))

    def diff(a: list[list], b: list[list]) -> list[list]:
        return [
            [None if x is None or y is None else x - y for x, y in zip(p, q, strict=True)]
            for p, q in zip(a, b, strict=True)
        ]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    print(f"other mapping: {bootstrap_ci(new).format()} (return {mean(returns['other']):.1f})")
    print(f"scored mapping: {bootstrap_ci(old).format()} (return {mean(returns['scored']):.1f})")
    print(f"other minus scored mapping, paired: {bootstrap_ci(diff(new, old)).format(sign=True)}")
    for label, name in BASELINES:
        if any(s is not None for seed in baselines[name] for s in seed):
            print(f"{label}: {bootstrap_ci(baselines[name]).format()}")
            paired = bootstrap_ci(diff(new, baselines[name])).format(sign=True)
            print(f"other mapping minus {label}, paired: {paired}")


if __name__ == "__main__":
    main()
