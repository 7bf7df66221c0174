"""How far an off-policy fine-tune's converted actor acts from the prediction.

For the validation tasks of ``meta-rl select-finetune --val-tasks N`` (past early
stopping's; ``--tasks`` gives N), ``adapt(..., algo="sac")`` converts the prediction with
the given warm-start settings; the prediction then plays 3 deterministic episodes, and on
every state it visits both act. Printed: the mean absolute difference of their actions,
in units of the action half-range, per task and overall:

    python docs/benchmarks/halfcheetahvel-finetune/conversion_error.py \\
        docs/benchmarks/halfcheetahvel-td3/interpolation-seed0/mapping-99a990e99877.safetensors \\
        '{"head_gain": null}' '{"head_gain": 3.0}' '{"head_gain": 3.0, "fit_updates": 5000}'
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import torch

from meta_rl.agents import adapt
from meta_rl.agents.adapt import load_mapping
from meta_rl.benchmarks.finetune import selection_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a mapping (path or shipped name)")
    parser.add_argument("settings", nargs="+", help="warm-start settings, one JSON object each")
    parser.add_argument("--tasks", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    mapping = load_mapping(args.checkpoint)
    tasks = selection_tasks(mapping, args.tasks)
    for text in args.settings:
        settings = json.loads(text)
        errors = []
        for task in tasks:
            sac = adapt(mapping, task=task, algo="sac", seed=0, threads=None, **settings)
            ppo = adapt(mapping, task=task, algo="ppo", seed=0, threads=None)
            env = mapping.family.make(task=task)
            half = (env.action_space.high - env.action_space.low) / 2
            gaps = []
            for episode in range(3):
                obs, _ = env.reset(seed=episode + 1)
                done = False
                while not done:
                    action = ppo.predict(obs, deterministic=True)[0]
                    converted = sac.predict(obs, deterministic=True)[0]
                    gaps.append(float(np.mean(np.abs(converted - action) / half)))
                    obs, _, terminated, truncated, _ = env.step(action)
                    done = terminated or truncated
            errors.append(np.mean(gaps))
        print(
            f"{text}: per task {', '.join(f'{e:.4f}' for e in errors)}; mean {np.mean(errors):.4f}"
        )


if __name__ == "__main__":
    main()
