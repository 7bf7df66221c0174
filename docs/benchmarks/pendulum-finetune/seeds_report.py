"""Pool the finished seeds of `docs/benchmarks/pendulum-finetune/seeds` (each run's
`results.json`) into one report: the benchmark's own summary, fine-tune section and
fine-tune targets, for the seeds that finished.

Run: python docs/benchmarks/pendulum-finetune/seeds_report.py
"""

from __future__ import annotations

import json
from pathlib import Path

from meta_rl.benchmarks.benchmark import _summarise_split, finetune_section, finetune_targets
from meta_rl.benchmarks.results import ScoreResult

HERE = Path(__file__).resolve().parent / "seeds"


def main() -> None:
    runs = sorted(HERE.glob("interpolation-seed*/results.json"))
    results = [ScoreResult.from_json(json.loads(p.read_text())) for p in runs]
    summary = _summarise_split(results)
    seeds = ", ".join(p.parent.name.removeprefix("interpolation-seed") for p in runs)
    lines = [
        f"Pendulum (`td3` mappings), interpolation test tasks, seeds {seeds} x "
        f"{len(results[0].rows)} tasks, 10 episodes per task and point. Normalised score, "
        "mean [95% two-level bootstrap interval].",
        *finetune_section(summary),
        "",
        "Targets: " + json.dumps(finetune_targets(summary), indent=1),
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "pooled.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
