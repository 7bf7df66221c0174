"""Example rollouts of predicted policies across tasks, and a GIF of one.

Run: ``python examples/rollout.py`` (writes ``pendulum-rollout.gif``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.rollout import rollout


def main(checkpoint: str = "pendulum", gif: str = "pendulum-rollout.gif") -> None:
    mapping = TrainedMapping.load(checkpoint)
    for task in mapping.task_space.sample(3, rng=7):
        result = rollout(mapping, task, episodes=3, seed=0)
        shown = ", ".join(f"{k}={v:.2f}" for k, v in task.items())
        print(f"{shown}: return {result['return_mean']:.1f} +- {result['return_std']:.1f}")
    result = rollout(mapping, {"m": 1.5, "l": 0.6}, gif=Path(gif))
    print(f"wrote {result['gif']} ({result['frames']} frames)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default="pendulum")
    parser.add_argument("--gif", default="pendulum-rollout.gif")
    args = parser.parse_args()
    main(args.checkpoint, args.gif)
