"""Where a ``td3`` iteration's time goes on a family: rollout env steps per second, gradient
steps per second and their profile, beside SB3's ``TD3`` on the family's default task.

    python docs/benchmarks/halfcheetahvel-objectives/profile_td3.py HalfCheetahVel --pi 100 100

The objective is built as ``make bench`` builds it on Pendulum
(:func:`meta_rl.benchmarks.speed.td3_learner`: 16 tasks per rollout, a twin critic of
256-256, batches of 16 tasks x 16 states, the actor and the targets every second step), on
an untrained mapping of ``--pi``-sized policies, one torch thread; SB3's ``TD3`` has the
same sizes (actor ``--pi``, critics 256-256, batches of 256).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from meta_rl.benchmarks.speed import actor_periods, rollout_rate, sb3_off_policy, td3_learner


def main() -> None:
    from stable_baselines3 import TD3

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family")
    parser.add_argument("--pi", type=int, nargs="+", default=[64, 64], help="policy layers")
    parser.add_argument("--periods", type=int, default=100, help="actor periods timed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pi = tuple(args.pi)
    learner = td3_learner(args.family, pi)
    rollout = rollout_rate(learner)
    period = actor_periods(learner)
    for _ in range(5):
        period()
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    for _ in range(args.periods):
        period()
    profile.disable()
    seconds = time.perf_counter() - start
    mapping = sum(p.numel() for p in learner.network.parameters())
    print(
        f"{args.family}: mapping {mapping:,} parameters, predicting {learner.spec.numel:,} "
        "(actor and value network); "
        f"rollout {rollout:,.0f} env steps/s; {2 * args.periods / seconds:.1f} gradient steps/s"
    )
    pstats.Stats(profile).sort_stats("cumulative").print_stats(r"td3\.py|off_policy\.py|adam")
    env = learner.family.make()
    (sb3,) = sb3_off_policy(2 * args.periods, env=env, pi=pi, algos=(TD3,))
    print(f"SB3 TD3: {sb3['updates_per_second']:.1f} gradient steps/s")


if __name__ == "__main__":
    main()
