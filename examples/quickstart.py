"""Quickstart: a policy for a pendulum it never saw, at once, then a short fine-tune.

Run: ``python examples/quickstart.py`` (uses the Pendulum mapping shipped with meta-rl).
"""

from __future__ import annotations

import argparse

import torch

from meta_rl.agents import adapt
from meta_rl.evaluation import ParamsPolicy, run_episodes
from meta_rl.mapping.checkpoint import TrainedMapping


def main(checkpoint: str = "pendulum", steps: int = 5000) -> None:
    torch.set_num_threads(1)
    mapping = TrainedMapping.load(checkpoint)
    task = {"m": 1.8, "l": 1.3, "g": 12.0, "max_torque": 2.5}  # heavy, long, strong gravity
    env = mapping.family.make(task=task)

    def score(params: torch.Tensor) -> float:
        policy = ParamsPolicy(mapping.spec, params, env.action_space)
        return sum(run_episodes(env, policy, episodes=5, seed=1)) / 5

    print(f"task: {task}")
    print(f"default-task expert:  {score(mapping.base_params):8.1f}")
    print(f"zero-shot prediction: {score(mapping.predict(task)):8.1f}")
    model = adapt(mapping, task=task, seed=0)
    model.learn(steps)
    print(f"after {steps} fine-tune steps: {score(mapping.spec.flatten(model.policy)):8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default="pendulum")
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    main(args.checkpoint, args.steps)
