"""Score a benchmark run's cached context-conditioned SAC on a `select-objective` report's
validation tasks, with the episode seeds that report's mappings were scored with, so that
its returns pair task by task with theirs (and with `compare.py`'s td3 variants). Run from
the repository root:

    python docs/benchmarks/halfcheetahvel-context-sac/on_validation.py \\
        docs/benchmarks/halfcheetahvel-context-sac/interpolation-seed0 \\
        docs/benchmarks/halfcheetahvel-objectives/selection/results.json

The run folder must hold its mapping and its context SAC (`context-sac-*.safetensors`,
remade by the folder's `checkpoints.json` command); the report's split and split seed
must be the run's, so that the validation tasks are outside what both trained on.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from meta_rl.agents.baselines import evaluate_context_policy, rebuild_context_sac
from meta_rl.benchmarks.selection import val_seed
from meta_rl.infra.files import load_tensors
from meta_rl.infra.threads import torch_threads
from meta_rl.mapping.checkpoint import TrainedMapping


@torch_threads(1)
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a benchmark run folder (<split>-seed<k>)")
    parser.add_argument("report", type=Path, help="a select-objective results.json")
    args = parser.parse_args()
    report = json.loads(args.report.read_text())
    (mapping_path,) = sorted(args.run.glob("mapping-*.safetensors"))
    (policy_path,) = sorted(args.run.glob("context-sac-*.safetensors"))
    mapping = TrainedMapping.load(mapping_path)
    split = mapping.info["split_kind"], mapping.info["split_seed"]
    if split != (report["split"], report["split_seed"]) or mapping.family_name != report["family"]:
        raise SystemExit(f"{args.run} is a run of another family or split than {args.report}")
    tensors, meta = load_tensors(policy_path)
    policy = rebuild_context_sac(mapping.family, mapping.training_tasks, tensors, meta)
    returns = [
        evaluate_context_policy(
            policy, mapping.family, task, episodes=report["episodes"], seed=val_seed(i)
        )
        for i, task in enumerate(report["val_tasks"])
    ]
    print(json.dumps({"returns": returns, "mean": float(np.mean(returns))}))


if __name__ == "__main__":
    main()
