"""Pendulum: where SAC's converted actor starts, by the copied head's gain.

On the 12 validation tasks of ``meta-rl select-finetune Pendulum --val-tasks 12`` (past
early stopping's), the shipped mapping's zero-shot return, then for each gain the return
of ``adapt(..., algo="sac", head_gain=GAIN)`` right after its 400-step warm start (10
deterministic episodes each, the selection's seeds; ``none``: one gain per action
dimension):

    python docs/benchmarks/pendulum-finetune/head_gain_start.py 12 3 6 10 none
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch

from meta_rl.agents.adapt import load_mapping
from meta_rl.benchmarks.finetune import finetune_job, selection_tasks, zero_shot_job


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    n_tasks, gains = int(sys.argv[1]), sys.argv[2:]
    mapping = load_mapping("pendulum")
    tasks = selection_tasks(mapping, 12)[:n_tasks]
    zero = [zero_shot_job("pendulum", t, 10, 0) for t in tasks]
    print(f"zero-shot: mean {np.mean(zero):.1f}; per task {np.round(zero, 1).tolist()}")
    for text in gains:
        gain = None if text == "none" else float(text)
        starts = [
            finetune_job("pendulum", t, "prediction", "sac", {"head_gain": gain}, (0,), 10, 0)[0][1]
            for t in tasks
        ]
        print(
            f"head_gain {text}: mean {np.mean(starts):.1f}; per task {np.round(starts, 1).tolist()}"
        )


if __name__ == "__main__":
    main()
