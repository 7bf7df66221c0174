"""Record in older off-policy checkpoints the training tasks their phase drew.

Since the `sacd` objective, a checkpoint lists the tasks an off-policy phase (`td3`,
`sacd`) trained on (`info["td3_tasks"]`), and `meta-rl benchmark` trains its baselines on
the same tasks (`TrainedMapping.training_tasks`). The `td3` mappings published before that
list only the split's training tasks, so their baselines trained on 48 tasks where `td3`
drew from 256. This script adds the list to such a checkpoint, in place (atomically), after
checking that the file is the mapping of the settings it assumes: the settings key of
`meta-rl select-objective`'s (and the benchmark's) training of that family, split, seed and
objective, at today's defaults, must be the key in the file's name; a file whose key does
not match is left alone and reported. The tasks are drawn by the same function that
training uses (`meta_rl.train.off_policy_tasks`). Run from the repository root:

    python docs/benchmarks/record_drawn_tasks.py \
        docs/benchmarks/pendulum-td3*/*-seed*/mapping-*.safetensors
"""

import argparse
import sys
from pathlib import Path

from meta_rl.checkpoint import OFF_POLICY_PHASES, TrainedMapping
from meta_rl.selection import SelectionConfig
from meta_rl.train import off_policy_tasks, settings_key


def record(path: Path) -> str:
    mapping = TrainedMapping.load(path)
    info = mapping.info
    missing = [p for p in mapping.objective.split("+") if p in OFF_POLICY_PHASES]
    missing = [p for p in missing if f"{p}_tasks" not in info]
    if not missing:
        return "already recorded (or no off-policy phase)"
    config = SelectionConfig(
        family=mapping.family_name, split=info["split_kind"], split_seed=info["split_seed"]
    ).train_config(mapping.objective, info["seed"])
    key = settings_key(config)[:12]
    if path.name != f"mapping-{key}.safetensors":
        return f"left alone: its name does not hold the settings key {key} of today's defaults"
    for phase in missing:
        info[f"{phase}_tasks"] = off_policy_tasks(config, phase)
    mapping.save(path)
    return "recorded " + ", ".join(f"{p}: {len(info[f'{p}_tasks'])} tasks" for p in missing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    failed = False
    for path in parser.parse_args().checkpoints:
        outcome = record(path)
        failed |= outcome.startswith("left alone")
        print(f"{path}: {outcome}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
