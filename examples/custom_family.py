"""Define a family over any Gymnasium env in a few lines, and use it like a built-in one.

Run: ``python examples/custom_family.py``
"""

from __future__ import annotations

import gymnasium as gym

from meta_rl.envs import Feature, make_family


def set_pole(env: gym.Env, task: dict[str, float]) -> None:
    """Push the task into Gymnasium's CartPole, derived quantities included."""
    env.masspole = task["masspole"]
    env.length = task["half_length"]
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length


family = make_family(
    "PoleCart",
    "CartPole-v1",
    [
        Feature(name="masspole", default=0.1, low=0.05, high=0.5, unit="kg", scale="log"),
        Feature(name="half_length", default=0.5, low=0.25, high=1.0, unit="m", scale="log"),
    ],
    apply=set_pole,
)


def main() -> None:
    env = gym.make(family.id, task={"masspole": 0.4, "half_length": 0.3})
    print(family.id, env.unwrapped.task, env.unwrapped.descriptor)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(int(obs[2] + obs[3] > 0))
        total += float(reward)
        done = terminated or truncated
    print(f"a hand-written controller balances it for {total:.0f} steps")


if __name__ == "__main__":
    main()
