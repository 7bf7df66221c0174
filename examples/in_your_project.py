"""meta-rl inside your own RL project: an ordinary SB3 model, ready for a new environment.

Run: ``python examples/in_your_project.py``
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import meta_rl  # noqa: F401  (registers meta_rl/<Family>-v0)
from meta_rl.agents import adapt


def main(checkpoint: str = "pendulum", steps: int = 5000) -> None:
    env = Monitor(gym.make("meta_rl/Pendulum-v0", task={"m": 0.7, "l": 1.4, "g": 6.0}))
    model = adapt(checkpoint, env)  # SB3 PPO carrying the predicted actor and critic
    print("zero-shot:", evaluate_policy(model, env, n_eval_episodes=5))
    model.learn(steps)  # the fine-tune: plain SB3 from here on
    print("fine-tuned:", evaluate_policy(model, env, n_eval_episodes=5))
    model.save("pendulum-adapted.zip")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default="pendulum")
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    main(args.checkpoint, args.steps)
