"""How fast SAC from scratch learns one HalfCheetahVel test task: the oracle's SAC run (the
recipe's settings, SB3's ``SAC``, the benchmark's oracle seed and episodes), evaluated at
``--points`` env steps, each point written to ``--out`` as soon as it is measured.

    python docs/benchmarks/halfcheetahvel-oracle/sac_curve.py --target 1.2352305827652355 \
        --points 10000 20000 30000 40000 50000 60000

The run is built as the benchmark's SAC oracle builds its own
(``meta_rl.benchmarks.finetune.scratch_sac_job``: same settings, seed and evaluation
episodes); a rerun starts afresh and rewrites ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from meta_rl.envs import get_family
from meta_rl.evaluation import run_episodes
from meta_rl.infra.files import write_json
from meta_rl.infra.sb3 import silence
from meta_rl.infra.threads import torch_threads
from meta_rl.training.recipes import recipe_for

HERE = Path(__file__).resolve().parent


@torch_threads(1)
def main() -> None:
    from stable_baselines3 import SAC

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, required=True, help="target velocity, m/s")
    parser.add_argument("--points", type=int, nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0, help="the benchmark's oracle seed")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "sac_curve.json")
    args = parser.parse_args()
    family = get_family("HalfCheetahVel")
    task = {"target_velocity": args.target}
    settings = recipe_for("HalfCheetahVel").sac
    env, eval_env = family.make(task=task), family.make(task=task)
    model = silence(SAC("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **settings))
    record = {"task": task, "settings": settings, "seed": args.seed, "curve": []}
    start, done = time.perf_counter(), 0
    for point in sorted(args.points):
        model.learn(point - done, reset_num_timesteps=done == 0, progress_bar=False)
        done = int(model.num_timesteps)
        returns = run_episodes(
            eval_env,
            lambda obs: model.predict(obs, deterministic=True)[0],
            episodes=args.episodes,
            seed=args.seed + 1,
        )
        seconds = time.perf_counter() - start
        record["curve"].append(
            {"steps": done, "return": float(np.mean(returns)), "seconds": seconds}
        )
        write_json(args.out, record)
        print(json.dumps(record["curve"][-1]), flush=True)


if __name__ == "__main__":
    main()
