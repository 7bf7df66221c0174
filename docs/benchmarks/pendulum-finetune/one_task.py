"""One fine-tune on one pendulum, evaluated along the way: the command behind the figures of
this folder's notes.

    python docs/benchmarks/pendulum-finetune/one_task.py pendulum sac
    python docs/benchmarks/pendulum-finetune/one_task.py pendulum td3 '{"gradient_steps": 1}'

Arguments: a mapping (path or shipped name), an algorithm, and optional settings as JSON
(on top of the recipe's). Prints the prediction's zero-shot return, the converted model's
(after the warm start, for SAC and TD3), then the return after 1,000, 2,000, 3,000 and 5,000
env steps in all (10 seeded episodes each) and the wall clock.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

from meta_rl.agents import adapt, evaluate

TASK = {"m": 1.7, "l": 1.2, "g": 12.5, "max_torque": 2.0}  # heavy, long, weak motor


def main() -> None:
    mapping, algo = sys.argv[1], sys.argv[2]
    settings = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    started = time.time()
    zero_shot = evaluate(mapping, TASK, episodes=10, seed=1000).mean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = adapt(mapping, task=TASK, algo=algo, seed=0, **settings)
    done = model.warm_steps
    start = evaluate(mapping, TASK, policy=model, episodes=10, seed=1000).mean
    print(f"zero-shot {zero_shot:.1f}; converted, after {done} steps: {start:.1f}")
    for target in (1000, 2000, 3000, 5000):
        model.learn(target - done, reset_num_timesteps=False)
        done = target
        ret = evaluate(mapping, TASK, policy=model, episodes=10, seed=1000).mean
        print(f"{target} env steps: {ret:.1f}")
    print(f"wall clock {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
