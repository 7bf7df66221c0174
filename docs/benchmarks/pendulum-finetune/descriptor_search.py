"""Nearby descriptors' predictions on the fine-tune selection's validation tasks: can the
mapping's own critic rank them, and can episodes? The command behind the notes' section on
searching around the task's descriptor.

    python docs/benchmarks/pendulum-finetune/descriptor_search.py

For each of the 6 validation tasks of `meta-rl select-finetune Pendulum` (past early
stopping's; never a test task) and the shipped `pendulum` mapping:

* **critic**: 30 descriptors drawn around the task's (std 0.05, 0.1 and 0.2, ten each),
  ranked by the mapping's critic, ``min(Q1, Q2)(s, a, d)`` for the task's ``d``, averaged
  over the states of two episodes of the task's own prediction; the return (10 episodes)
  of the top-ranked prediction, against the task's own and the best of the 31.
* **episodes**: the selection ``adapt(..., search=N)`` makes, without the warm-up and the
  fine-tune after it: the task's prediction and N draws (std 0.2) each play one
  deterministic episode from one shared start, the best is kept and scored on 10 other
  episodes; four repeats of other draws and starts. (The draws and starts are this
  script's own stream, not ``adapt``'s: one generator for all tasks of a repeat, starts
  seeded 100, 110, 120, 130.)
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from meta_rl.evaluation import ParamsPolicy, run_episodes
from meta_rl.mapping.checkpoint import TrainedMapping


def validation_tasks(mapping: TrainedMapping) -> list[dict[str, float]]:
    """The selection's tasks, drawn as `meta-rl select-finetune` draws them."""
    recipe, info = mapping.recipe, mapping.info
    split = mapping.task_space.split(
        recipe.n_train,
        recipe.n_test,
        n_val=recipe.n_val + 6,
        kind=info.get("split_kind", "interpolation"),
        seed=int(info.get("split_seed", 0)),
    )
    return split.val[recipe.n_val :]


def mean_return(mapping: TrainedMapping, env, d: torch.Tensor, episodes: int, seed: int) -> float:
    policy = ParamsPolicy(mapping.spec, mapping.predict_descriptor(d), env.action_space)
    return float(np.mean(run_episodes(env, policy, episodes=episodes, seed=seed)))


def critic_value(
    mapping: TrainedMapping, env, states: torch.Tensor, d: torch.Tensor, c: torch.Tensor
) -> float:
    """Mean of ``min(Q1, Q2)`` of the mapping's critic for task ``d`` over ``states``, with
    the (clipped) actions of the prediction for descriptor ``c``."""
    critic, spec = mapping.critic, mapping.spec
    params = mapping.predict_descriptor(c)
    low, high = torch.as_tensor(env.action_space.low), torch.as_tensor(env.action_space.high)
    actions = spec.action_mean(params[spec.actor_rows][None], states[None])[0]
    x = torch.cat([states, actions.clamp(low, high), d.expand(len(states), -1)], 1)
    values = []
    for net in ("q1", "q2"):
        h = x
        for i in range(len(critic.hidden) + 1):
            h = (
                h @ critic.tensors[f"{net}.{2 * i}.weight"].T
                + critic.tensors[f"{net}.{2 * i}.bias"]
            )
            h = torch.relu(h) if i < len(critic.hidden) else h
        values.append(h)
    return float(torch.minimum(*values).mean())


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    started = time.time()
    mapping = TrainedMapping.load("pendulum")
    tasks = validation_tasks(mapping)
    generator = torch.Generator().manual_seed(0)
    own, ranked, best = [], [], []
    for task in tasks:
        env = mapping.family.make(task=task)
        d = torch.as_tensor(mapping.descriptor(task))
        policy = ParamsPolicy(mapping.spec, mapping.predict_descriptor(d), env.action_space)
        states = []
        for episode in range(2):
            obs, _ = env.reset(seed=500 + episode)
            done = False
            while not done:
                states.append(obs)
                obs, _, terminated, truncated, _ = env.step(policy(obs))
                done = terminated or truncated
        s = torch.as_tensor(np.array(states))
        draws = [
            d + scale * torch.randn(d.shape, generator=generator)
            for scale in (0.05, 0.1, 0.2)
            for _ in range(10)
        ]
        candidates = [d, *draws]
        values = [critic_value(mapping, env, s, d, c) for c in candidates]
        returns = [mean_return(mapping, env, c, 10, 1) for c in candidates]
        own.append(returns[0])
        ranked.append(returns[int(np.argmax(values))])
        best.append(max(returns))
    print(
        f"critic: own prediction {np.mean(own):.1f}, the critic's pick {np.mean(ranked):.1f}, "
        f"best of the 31 by 10 episodes each {np.mean(best):.1f}"
    )
    for n in (4, 9):
        means = []
        for repeat in range(4):
            generator = torch.Generator().manual_seed(repeat)
            start = 100 + 10 * repeat
            kept = []
            for task in tasks:
                env = mapping.family.make(task=task)
                d = torch.as_tensor(mapping.descriptor(task))
                candidates = [
                    d,
                    *(d + 0.2 * torch.randn(d.shape, generator=generator) for _ in range(n)),
                ]
                scores = [mean_return(mapping, env, c, 1, start) for c in candidates]
                kept.append(mean_return(mapping, env, candidates[int(np.argmax(scores))], 10, 1))
            means.append(float(np.mean(kept)))
        print(
            f"episodes, search={n} ({(n + 1) * 200} env steps): mean return "
            f"{np.mean(means):.1f} over 4 repeats ({', '.join(f'{m:.1f}' for m in means)})"
        )
    print(f"wall clock {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
