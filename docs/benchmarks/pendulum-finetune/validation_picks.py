"""The test-task zero-shot scores of the networks `validation_rounds.py` picked, as the
benchmark measures them (`zero_shot_job`: 10 episodes, the run's seed), normalised by the
published three-seed benchmark's random and oracle returns of each task
(`seeds/interpolation-seed<k>/results.json`).

    python docs/benchmarks/pendulum-finetune/validation_picks.py --seeds 0 1 2

Each seed's checkpoints are read from the work folder `validation_rounds.py` was given
(`--workdir-prefix`, default `runs-val`: `runs-val<k>`). Writes `validation-rounds/picks.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meta_rl.benchmarks.finetune import zero_shot_job

HERE = Path(__file__).resolve().parent
ROUNDS = HERE / "validation-rounds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--workdir-prefix", default="runs-val")
    args = parser.parse_args()
    report: dict[str, dict[str, list[float]]] = {}
    for seed in args.seeds:
        picks = json.loads((ROUNDS / f"seed{seed}.json").read_text())["picks"]
        rows = json.loads(
            (HERE / "seeds" / f"interpolation-seed{seed}" / "results.json").read_text()
        )["rows"]
        for rule, round_ in picks.items():
            checkpoint = f"{args.workdir_prefix}{seed}/pendulum-seed{seed}-{rule}.safetensors"
            scores = [
                (zero_shot_job(checkpoint, row["task"], 10, seed) - row["random"])
                / (row["oracle"] - row["random"])
                for row in rows
            ]
            report.setdefault(rule, {})[f"seed{seed}"] = [round(s, 4) for s in scores]
            print(
                f"seed {seed} {rule} (round {round_}): {np.mean(scores):.3f}", np.round(scores, 3)
            )
    for rule, by_seed in report.items():
        print(rule, "mean over seeds and tasks", round(float(np.mean(list(by_seed.values()))), 3))
    (ROUNDS / "picks.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
