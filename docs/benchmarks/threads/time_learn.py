"""Seconds of ``adapt("pendulum", env).learn(5000)`` on torch's default thread count against
one thread: the figures of the README's "In your own project".

    python docs/benchmarks/threads/time_learn.py default   # threads=None: torch's own count
    python docs/benchmarks/threads/time_learn.py one       # the library's default, 1 thread

Run each a few times, alternating; the gap depends on what else the machine is doing.
"""

import sys
import time

import gymnasium as gym
import torch

import meta_rl  # noqa: F401  (registers the families)
from meta_rl.agents import adapt


def main(mode: str) -> None:
    if mode not in ("default", "one"):
        raise SystemExit("usage: time_learn.py default|one")
    env = gym.make("meta_rl/Pendulum-v0", task={"m": 0.7, "l": 1.4, "g": 6.0})
    model = adapt("pendulum", env, threads=None if mode == "default" else 1)
    start = time.perf_counter()
    model.learn(5000)
    print(
        f"{mode}: learn(5000) took {time.perf_counter() - start:.1f} s "
        f"(torch threads in this process: {torch.get_num_threads()})"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
