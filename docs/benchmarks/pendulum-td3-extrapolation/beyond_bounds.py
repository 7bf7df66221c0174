"""The shipped Pendulum mappings beyond the family's bounds: `pendulum` (td3) against
`pendulum-rl` and the base policy, on 12 pendulums heavier than any trained on.

Each task draws `m` from [2, 2.5] kg (the bounds stop at 2) and every other feature within
its bounds (seed 5); each policy gets 10 deterministic episodes with the same seeds. Run
from the repository root:

    python docs/benchmarks/pendulum-td3-extrapolation/beyond_bounds.py

It writes beyond_bounds.json beside itself (per task: td3 as `predict` gives it, its
descriptor clamped to the bounds; td3 unclamped; rl; base) and prints means.
"""

import json
from pathlib import Path

import numpy as np
import torch

from meta_rl.evaluation import ParamsPolicy, run_episodes
from meta_rl.mapping.checkpoint import TrainedMapping

HERE = Path(__file__).parent


def mean_return(mapping: TrainedMapping, params: torch.Tensor, task: dict[str, float]) -> float:
    env = mapping.family.make(task=task, extrapolate=True)
    try:
        policy = ParamsPolicy(mapping.spec, params, env.action_space)
        return float(np.mean(run_episodes(env, policy, episodes=10, seed=1)))
    finally:
        env.close()


def main() -> None:
    torch.set_num_threads(1)
    td3, rl = TrainedMapping.load("pendulum"), TrainedMapping.load("pendulum-rl")
    space = td3.task_space
    rng = np.random.default_rng(5)
    tasks = []
    for _ in range(12):
        task = space.sample(1, rng)[0]
        task["m"] = float(rng.uniform(2.0, 2.5))
        tasks.append(task)
    rows = []
    for task in tasks:
        scored = (
            (td3, td3.predict(task, extrapolate=True)),
            (td3, td3.predict(task, extrapolate=True, clamp=False)),
            (rl, rl.predict(task, extrapolate=True)),
            (td3, td3.base_params),
        )
        rows.append([mean_return(m, params, task) for m, params in scored])
    means = np.mean(rows, 0)
    print(
        f"td3 {means[0]:.1f}, td3 unclamped {means[1]:.1f}, rl {means[2]:.1f}, base {means[3]:.1f}"
    )
    table = np.array(rows)
    print("td3 better than rl on", int((table[:, 0] > table[:, 2]).sum()), "of 12")
    print("unclamped td3 better than rl on", int((table[:, 1] > table[:, 2]).sum()), "of 12")
    out = {"tasks": tasks, "returns (td3, td3 unclamped, rl, base)": rows}
    (HERE / "beyond_bounds.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
