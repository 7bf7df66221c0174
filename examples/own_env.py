"""Your own environment, end to end: a family over it, a mapping trained on it, and an
ordinary Stable-Baselines3 agent for a task it never saw.

The env is a thruster that must bring a mass to rest at the origin; the mass and the drag
differ from task to task, so the best policy does too. The family has no recipe of its
own: training derives one from the env and logs what it decided.

Run it as a script (about 3 minutes here with ``--budget quick``)::

    python examples/own_env.py --budget quick

or from the command line, which imports this module to know the family::

    cd examples
    meta-rl train Thruster --module own_env --budget quick --out thruster.safetensors
    meta-rl adapt thruster.safetensors --module own_env --task mass=1.7,drag=0.3 --steps 2000
"""

from __future__ import annotations

import argparse
import logging

import gymnasium as gym
import numpy as np

from meta_rl.envs import Feature, make_family


class ThrusterEnv(gym.Env):
    """A mass on a line, pushed by a thruster of bounded force against linear drag.

    Observation ``(x, v)``; action the thrust in ``[-1, 1]``; reward
    ``-(x^2 + 0.1 v^2 + 0.01 u^2)`` per step of ``dt = 0.05``.
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, mass: float = 1.0, drag: float = 0.1) -> None:
        self.mass, self.drag, self.dt = mass, drag, 0.05
        self.x = self.v = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.v], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1.0, 1.0))
        self.v = float(self.np_random.uniform(-0.5, 0.5))
        return self._obs(), {}

    def step(self, action):
        u = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        accel = (u - self.drag * self.v) / self.mass
        self.v = float(np.clip(self.v + accel * self.dt, -10.0, 10.0))
        self.x = float(np.clip(self.x + self.v * self.dt, -10.0, 10.0))
        reward = -(self.x**2 + 0.1 * self.v**2 + 0.01 * u**2)
        return self._obs(), reward, False, False, {}


# Made at import, so that `meta-rl ... --module own_env` (and worker processes) know it.
family = make_family(
    "Thruster",
    ThrusterEnv,
    [
        Feature(name="mass", default=1.0, low=0.5, high=2.0, unit="kg", scale="log"),
        Feature(name="drag", default=0.1, low=0.0, high=0.5, unit="1/s"),
    ],
    apply={"mass": "mass", "drag": "drag"},
    max_episode_steps=200,
    summary="a thruster brings a mass to rest at the origin",
)


def main() -> None:
    from meta_rl.agents import adapt, evaluate
    from meta_rl.training.config import TrainConfig
    from meta_rl.training.trainer import train

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", choices=("full", "quick"), default="quick")
    parser.add_argument("--budget-scale", type=float, default=None, help="smaller: faster")
    parser.add_argument("--workdir", default="runs")
    parser.add_argument("--steps", type=int, default=2000, help="fine-tune env steps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the run's notes

    settings = {"budget_scale": args.budget_scale} if args.budget_scale else {}
    config = TrainConfig(family="Thruster", budget=args.budget, workdir=args.workdir, **settings)
    mapping, log = train(config)
    print("validation returns:", {k: v for k, v in log["summary"].items() if "return" in k})

    task = {"mass": 1.7, "drag": 0.3}  # a task the mapping never trained on

    def score(policy) -> str:
        return str(evaluate(mapping, task, policy=policy, episodes=5, seed=1))

    print(f"task {task}: zero-shot {score('zero-shot')}")
    model = adapt(mapping, task=task, seed=0)  # an ordinary SB3 model: SAC (Box actions)
    model.learn(max(0, args.steps - model.warm_steps))  # the warm start counts
    print(f"fine-tuned ({args.steps} env steps): {score(model)}")
    model.save("thruster-adapted.zip")


if __name__ == "__main__":
    main()
