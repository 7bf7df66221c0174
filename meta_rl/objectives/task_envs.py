"""The envs of one rollout of predicted policies, one training task each."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from meta_rl.envs import Family, Task
from meta_rl.envs.vector import FamilyVectorEnv, batched_families


class TaskEnvs:
    """The envs of one rollout, one task each: the family's batched env where it has one
    (one NumPy step for all), else one Gymnasium env per task. Finished episodes restart at
    once; the last observation of a truncated one is kept for bootstrapping."""

    def __init__(self, family: Family, tasks: Sequence[Task], *, batched: bool = True) -> None:
        self.n = len(tasks)
        self.vector: FamilyVectorEnv | None = None
        self.envs: list[gym.Env] = []
        if batched and family.name.lower() in batched_families():
            self.vector = FamilyVectorEnv(family, self.n, tasks, autoreset_mode="same_step")
            self.action_space = self.vector.single_action_space
        else:
            self.envs = [family.make(task=t) for t in tasks]
            # The widest action space holds every task's; each env clips to its own limits.
            self.action_space = self.envs[0].unwrapped.widest_spaces()[1]

    def reset(self, seed: int) -> np.ndarray:
        """Seeded start states. One env per task draws its seed from ``SeedSequence(seed)``,
        so that resets with consecutive seeds never share start states (``seed + i`` would:
        env ``i`` of one reset would meet env ``i - 1`` of the next)."""
        if self.vector is not None:
            return self.vector.reset(seed=seed)[0]
        seeds = np.random.SeedSequence(seed).generate_state(len(self.envs))
        return np.stack(
            [env.reset(seed=int(s))[0] for s, env in zip(seeds, self.envs, strict=True)]
        )

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Observations (new episodes' first where one ended), rewards, terminated,
        truncated, and each ended episode's last observation (NaN elsewhere)."""
        if isinstance(self.action_space, gym.spaces.Box):
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        if self.vector is not None:
            obs, reward, terminated, truncated, info = self.vector.step(actions)
            final = info.get("final_obs", np.full_like(obs, np.nan))
            return obs, reward, terminated, truncated, final
        out = [env.step(a) for env, a in zip(self.envs, actions, strict=True)]
        obs = np.stack([o[0] for o in out])
        reward = np.array([o[1] for o in out], dtype=np.float64)
        terminated = np.array([o[2] for o in out], dtype=bool)
        truncated = np.array([o[3] for o in out], dtype=bool)
        final = np.full_like(obs, np.nan)
        for i in np.flatnonzero(terminated | truncated):
            final[i] = obs[i]
            obs[i] = self.envs[i].reset()[0]
        return obs, reward, terminated, truncated, final

    def close(self) -> None:
        if self.vector is not None:
            self.vector.close()
        for env in self.envs:
            env.close()
