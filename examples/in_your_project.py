"""meta-rl inside your own RL project: an ordinary SB3 model, ready for a new environment.

Run: ``python examples/in_your_project.py``
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import meta_rl  # noqa: F401  (registers meta_rl/<Family>-v0)
from meta_rl.agents import adapt, base_policy, evaluate, load_mapping


def main(checkpoint: str = "pendulum", steps: int = 5000) -> None:
    task = {"m": 0.7, "l": 1.4, "g": 6.0}
    env = Monitor(gym.make("meta_rl/Pendulum-v0", task=task))
    mapping = load_mapping(checkpoint)  # a path, a shipped name, or train(...)'s result
    model = adapt(mapping, env)  # the family's fine-tune (SAC here) carrying the prediction
    expert = base_policy(mapping, env)  # the baseline: the default-task expert

    # Seeded evaluation: an env of its own, reseeded before every call, so that each model
    # meets the same episodes (unseeded, the mean changes from run to run).
    eval_env = make_vec_env("meta_rl/Pendulum-v0", n_envs=1, env_kwargs={"task": task})

    def seeded(m) -> str:
        eval_env.seed(0)
        mean, std = evaluate_policy(m, eval_env, n_eval_episodes=5)
        return f"{mean:.1f} +- {std:.1f}"

    print("default-task expert:", seeded(expert))
    print("zero-shot:", seeded(model))
    # The fine-tune: plain SB3 from here on (on one torch thread); an off-policy warm start
    # has already taken model.warm_steps env steps of the budget.
    model.learn(max(0, steps - model.warm_steps))
    print("fine-tuned:", seeded(model))
    # meta-rl's helper resets episode i with seed + i, as `meta-rl evaluate` does: other
    # episodes than evaluate_policy's above, so other numbers, as repeatable.
    print("fine-tuned, evaluate():", evaluate(mapping, task, policy=model, episodes=5, seed=0))
    model.save("pendulum-adapted.zip")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default="pendulum")
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    main(args.checkpoint, args.steps)
