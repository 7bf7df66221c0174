"""Does clamping the descriptor to the training tasks' box help beyond the training region?

Scores, on 12 tasks drawn from the extrapolation split's held-out region with another seed
(777; not the benchmark's test tasks), the zero-shot return of each mapping's prediction
for the task's own descriptor ("raw"), for the descriptor clamped to the box of the split's
training tasks ("box"), for it clamped to the split's training region ("region": what
``TrainedMapping.predict`` does for a td3 mapping), and of the base policy ("base"): the
three td3 extrapolation seeds (this folder) and the three `rl` ones
(docs/benchmarks/pendulum-rl). Run from the repository root:

    python docs/benchmarks/pendulum-td3-extrapolation/clamp_check.py

It writes clamp_check.json beside itself (per task: raw, box, region, base) and prints
means.
"""

import glob
import json
from pathlib import Path

import numpy as np
import torch

from meta_rl.evaluation import evaluate_params
from meta_rl.mapping.checkpoint import TrainedMapping

HERE = Path(__file__).parent
MAPPINGS = {
    f"td3-seed{s}": f"{HERE}/extrapolation-seed{s}/mapping-*.safetensors" for s in range(3)
} | {
    f"rl-seed{s}": f"docs/benchmarks/pendulum-rl/extrapolation-seed{s}/mapping-*.safetensors"
    for s in range(3)
}


def main() -> None:
    torch.set_num_threads(1)
    out = {}
    for name, pattern in MAPPINGS.items():
        mapping = TrainedMapping.load(glob.glob(pattern)[0])
        space = mapping.task_space
        train = np.stack([space.to_descriptor(t) for t in mapping.info["split"]["train"]])
        low, high = (torch.as_tensor(v, dtype=torch.float32) for v in (train.min(0), train.max(0)))
        rows = []
        for task in space.split(0, 12, kind="extrapolation", seed=777).test:
            d = torch.as_tensor(space.to_descriptor(task), dtype=torch.float32)
            with torch.no_grad():
                params = {
                    "raw": mapping.network(d),
                    "box": mapping.network(d.clamp(low, high)),
                    "region": mapping.predict(task, clamp=True),
                    "base": mapping.base_params,
                }
            rows.append(
                {
                    k: evaluate_params(mapping.spec, p, mapping.family, task, episodes=10, seed=1)
                    for k, p in params.items()
                }
            )
        out[name] = rows
        means = {k: np.mean([row[k] for row in rows]) for k in rows[0]}
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in means.items()))
    (HERE / "clamp_check.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
