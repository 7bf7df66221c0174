"""Quickstart: a policy for a pendulum it never saw, at once, then a short fine-tune.

Run: ``python examples/quickstart.py`` (uses the Pendulum mapping shipped with meta-rl).

Every number is the mean (and standard deviation) of the same five seeded episodes, so
the rows differ only where the policies do. ``learn`` runs on one torch thread (what small
policies run fastest on) and gives your process its own thread count back afterwards.
"""

from __future__ import annotations

import argparse

from meta_rl.agents import adapt, base_policy, evaluate, load_mapping


def main(checkpoint: str = "pendulum", steps: int = 5000) -> None:
    mapping = load_mapping(checkpoint)
    task = {"m": 1.8, "l": 1.3, "g": 12.0, "max_torque": 2.5}  # heavy, long, strong gravity

    def score(policy) -> str:
        return str(evaluate(mapping, task, policy=policy, episodes=5, seed=1))

    print(f"task: {task}")
    print(f"default-task expert:  {score('base')}")
    print(f"zero-shot prediction: {score('zero-shot')}")
    # An SB3 model of the family's fine-tune (SAC for Pendulum) carrying the prediction; an
    # off-policy warm start has already taken model.warm_steps env steps of the budget.
    model = adapt(mapping, task=task, seed=0)
    model.learn(max(0, steps - model.warm_steps))
    print(f"after {steps} fine-tune steps: {score(model)}")
    expert = base_policy(mapping, task=task, seed=0)  # the same fine-tune from the expert
    expert.learn(max(0, steps - expert.warm_steps))
    print(f"expert after {steps} fine-tune steps: {score(expert)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default="pendulum")
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    main(args.checkpoint, args.steps)
