"""``make bench``: speed figures, measured in one run on this machine (a script, not a test).

Prints, and with ``--json`` also writes:

* env steps per second of each batched family env against Gymnasium's ``SyncVectorEnv``
  of the same family, at 16, 256 and 4,096 envs, and against Gymnasium's own batched
  ``CartPoleVectorEnv``;
* the overhead of the wrappers (``DescriptorObservation``, ``TaskResampling``) over the
  raw env;
* SB3 PPO's env steps per second on Gymnasium's Pendulum-v1, on the family's env, and on
  the batched family env through :class:`meta_rl.agents.FamilyVecEnv`;
* the mapping's prediction latency (shipped Pendulum mapping);
* the ``rl`` objective's env steps per second on batched and on one-env-per-task rollouts;
* the ``td3`` objective's gradient steps per second and rollout env steps per second, beside
  SB3's ``TD3`` and ``SAC`` with the same critic, actor and batch sizes (the ratio).

Run: ``python -m meta_rl.benchmarks.speed [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from meta_rl.envs import DescriptorObservation, TaskResampling, get_family
from meta_rl.envs.vector import FamilyVectorEnv, batched_families


def _rate(step: Callable[[], None], steps_per_call: int, seconds: float) -> float:
    """Calls ``step`` for about ``seconds`` (after a short warm-up); env steps per second."""
    for _ in range(3):
        step()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    return calls * steps_per_call / (time.perf_counter() - start)


def _vector_rate(env: gym.vector.VectorEnv, seconds: float) -> float:
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    space = env.single_action_space
    n = env.num_envs
    if isinstance(space, gym.spaces.Discrete):
        actions = [rng.integers(space.n, size=n) for _ in range(8)]
    else:
        actions = [
            rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype)
            for _ in range(8)
        ]
    i = [0]

    def step() -> None:
        env.step(actions[i[0] % 8])
        i[0] += 1

    rate = _rate(step, n, seconds)
    env.close()
    return rate


def vector_envs(sizes: tuple[int, ...], seconds: float) -> list[dict[str, Any]]:
    """Batched family envs against SyncVectorEnv (and CartPole's native vector env)."""
    rows = []
    for name in batched_families():
        family = get_family(name)
        for n in sizes:
            tasks = family.task_space.sample(n, 0)
            batched = _vector_rate(FamilyVectorEnv(family, n, tasks), seconds)
            # Pendulum's spaces follow the task; TaskResampling with one task declares the
            # family's widest spaces, which SyncVectorEnv needs to batch different tasks.
            makers = [lambda t=t, f=family: TaskResampling(f.make(task=t), [t]) for t in tasks]
            sync = _vector_rate(gym.vector.SyncVectorEnv(makers), seconds)
            row = {"family": family.name, "envs": n, "batched": batched, "sync": sync}
            if family.name == "CartPole":
                native = gym.make_vec("CartPole-v1", n, vectorization_mode="vector_entry_point")
                row["gymnasium_native"] = _vector_rate(native, seconds)
            rows.append(row)
    return rows


def wrappers(seconds: float) -> list[dict[str, Any]]:
    """Steps per second of the raw family env and of it under each wrapper."""
    family = get_family("Pendulum")
    out = []

    def single_rate(env: gym.Env) -> float:
        env.reset(seed=0)
        action = env.action_space.sample()

        def step() -> None:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

        return _rate(step, 1, seconds / 5)

    # Rounds alternate raw and wrapped, and each keeps its best round, so load from other
    # processes does not land on one side only.
    envs = {
        "raw": family.make(),
        "DescriptorObservation": DescriptorObservation(family.make()),
        "TaskResampling": TaskResampling(family.make(), family.task_space),
    }
    best = dict.fromkeys(envs, 0.0)
    for _ in range(5):
        for name, env in envs.items():
            best[name] = max(best[name], single_rate(env))
    for name in ("DescriptorObservation", "TaskResampling"):
        raw, rate = best["raw"], best[name]
        out.append({"wrapper": name, "raw": raw, "wrapped": rate, "overhead": raw / rate - 1})
    return out


def sb3_ppo(steps: int) -> list[dict[str, Any]]:
    """SB3 PPO's env steps per second with and without the plugin (4 envs, Pendulum)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from meta_rl.agents import FamilyVecEnv
    from meta_rl.infra.sb3 import silence

    settings = {"n_steps": 256, "batch_size": 256, "n_epochs": 1, "device": "cpu", "seed": 0}
    envs = {
        "Gymnasium Pendulum-v1 (DummyVecEnv)": lambda: make_vec_env("Pendulum-v1", n_envs=4),
        "meta_rl/Pendulum-v0 (DummyVecEnv)": lambda: make_vec_env("meta_rl/Pendulum-v0", n_envs=4),
        "batched family env (FamilyVecEnv)": lambda: FamilyVecEnv("Pendulum", 4, seed=0),
    }
    out = []
    for name, make in envs.items():
        model = silence(PPO("MlpPolicy", make(), **settings))
        model.learn(1024)  # warm-up
        start = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        out.append({"env": name, "steps_per_second": steps / (time.perf_counter() - start)})
    return out


def mapping_latency(calls: int) -> dict[str, Any]:
    """Median seconds of one ``TrainedMapping.predict`` (descriptor in, parameters out)."""
    from meta_rl.mapping.checkpoint import TrainedMapping

    mapping = TrainedMapping.load("pendulum")
    tasks = mapping.task_space.sample(calls, 0)
    times = []
    for task in tasks:
        start = time.perf_counter()
        mapping.predict(task)
        times.append(time.perf_counter() - start)
    batch = torch.as_tensor(np.stack([mapping.task_space.to_descriptor(t) for t in tasks]))
    start = time.perf_counter()
    with torch.no_grad():
        mapping.network(batch)
    return {
        "single_median_ms": 1000 * float(np.median(times)),
        "batch": calls,
        "batch_ms": 1000 * (time.perf_counter() - start),
        "parameters_out": int(mapping.spec.numel),
    }


def rl_rollouts(iterations: int) -> list[dict[str, Any]]:
    """The ``rl`` objective's env steps per second (16 Pendulum tasks, 256 steps each)."""
    from meta_rl.mapping.network import MappingConfig, MappingNetwork
    from meta_rl.mapping.policy import PolicyArch, PolicySpec, build_policy
    from meta_rl.objectives.on_policy import RLConfig, train_rl

    family = get_family("Pendulum")
    arch = PolicyArch.for_env(family.make(), pi=(64, 64), vf=(64, 64))
    spec = PolicySpec(arch)
    tasks = family.task_space.sample(16, 0)
    descriptors = torch.as_tensor(np.stack([family.task_space.to_descriptor(t) for t in tasks]))
    out = []
    for batched in (True, False):
        torch.manual_seed(0)
        network = MappingNetwork(
            family.task_space.dim, spec.flatten(build_policy(arch)), MappingConfig()
        )
        config = RLConfig(iterations=iterations, tasks_per_iteration=16, n_steps=256)
        start = time.perf_counter()
        steps = train_rl(
            spec, network, family, tasks, descriptors, config,
            gamma=0.9, gae_lambda=0.95, seed=0, batched=batched,
        )  # fmt: skip
        name = "batched family env" if batched else "one Gymnasium env per task"
        out.append({"rollouts": name, "steps_per_second": steps / (time.perf_counter() - start)})
    return out


OFF_POLICY_BATCH = 256
"""Transitions per gradient step on both sides (the ``td3`` objective's 16 tasks of 16)."""


def td3_learner(family_name: str = "Pendulum", pi: tuple[int, ...] = (64, 64)) -> Any:
    """The ``td3`` objective as a recipe runs it (16 tasks per rollout of 200 steps, a twin
    256-256 critic, batches of 16 tasks x 16 states, the actor and the targets every second
    step) on an untrained mapping of ``pi``-sized policies for 64 tasks of the family, with
    its first rollout in the buffer: a :class:`~meta_rl.objectives.td3.TD3Learner`."""
    from meta_rl.mapping.network import MappingConfig, MappingNetwork
    from meta_rl.mapping.policy import PolicyArch, PolicySpec, build_policy
    from meta_rl.objectives.td3 import TD3Config, TD3Learner

    family = get_family(family_name)
    arch = PolicyArch.for_env(family.make(), pi=pi, vf=pi)
    spec = PolicySpec(arch)
    tasks = family.task_space.sample(64, 0)
    descriptors = torch.as_tensor(np.stack([family.task_space.to_descriptor(t) for t in tasks]))
    torch.manual_seed(0)
    network = MappingNetwork(
        family.task_space.dim, spec.flatten(build_policy(arch)), MappingConfig()
    )
    config = TD3Config(
        tasks=None, warmup_iterations=0, batch_tasks=16, batch_states=OFF_POLICY_BATCH // 16
    )
    learner = TD3Learner(spec, network, family, tasks, descriptors, config, seed=0)
    learner._collect(1)  # warm-up (and a buffer to sample from)
    return learner


def rollout_rate(learner: Any) -> float:
    """Env steps per second of one rollout of ``learner`` (its second iteration's)."""
    start = time.perf_counter()
    learner._collect(2)
    return learner._n_chosen * learner.config.n_steps / (time.perf_counter() - start)


def actor_periods(learner: Any) -> Callable[[], None]:
    """One whole actor period of ``learner`` per call (two critic steps, one actor step, the
    targets), as its ``_update`` makes them."""
    learner.config = replace(learner.config, n_steps=1, tasks_per_iteration=1, updates_per_step=2.0)
    return lambda: learner._update(1)


def td3_objective(seconds: float) -> dict[str, Any]:
    """The ``td3`` objective on Pendulum as its recipe runs it (:func:`td3_learner`):
    rollout env steps per second, and gradient steps per second once the actor learns."""
    learner = td3_learner()
    return {
        "rollout_env_steps_per_second": rollout_rate(learner),
        "updates_per_second": _rate(actor_periods(learner), 2, seconds),
        "batch": OFF_POLICY_BATCH,
    }


def sb3_off_policy(
    updates: int, env: Any = "Pendulum-v1", pi: tuple[int, ...] = (64, 64), algos: Any = None
) -> list[dict[str, Any]]:
    """SB3's ``TD3`` and ``SAC`` (or ``algos``) on ``env`` (Gymnasium's Pendulum-v1) with
    the ``td3`` objective's sizes (actor ``pi``, critics 256-256, batches of 256): gradient
    steps per second."""
    from stable_baselines3 import SAC, TD3

    from meta_rl.infra.sb3 import silence

    out = []
    for algo in algos or (TD3, SAC):
        model = silence(
            algo(
                "MlpPolicy",
                env,
                batch_size=OFF_POLICY_BATCH,
                learning_starts=1000,
                policy_kwargs={"net_arch": {"pi": list(pi), "qf": [256, 256]}},
                device="cpu",
                seed=0,
            )
        )
        model.learn(1000)  # fills the buffer; no gradient step yet
        model.train(gradient_steps=10, batch_size=OFF_POLICY_BATCH)  # warm-up
        start = time.perf_counter()
        model.train(gradient_steps=updates, batch_size=OFF_POLICY_BATCH)
        out.append(
            {"algo": algo.__name__, "updates_per_second": updates / (time.perf_counter() - start)}
        )
    return out


def _print(results: dict[str, Any]) -> None:
    print("## Env steps per second (one process)\n")
    print("| family | envs | batched | SyncVectorEnv | ratio | Gymnasium's own | batched / own |")
    print("|---|---|---|---|---|---|---|")
    for r in results["vector_envs"]:
        native = r.get("gymnasium_native")
        own = f"{native:,.0f} | {r['batched'] / native:.2f}" if native else "- | -"
        print(
            f"| {r['family']} | {r['envs']} | {r['batched']:,.0f} | {r['sync']:,.0f} | "
            f"{r['batched'] / r['sync']:.1f}x | {own} |"
        )
    print("\n## Wrapper overhead (Pendulum, one env)\n")
    for r in results["wrappers"]:
        print(
            f"- {r['wrapper']}: {r['wrapped']:,.0f} steps/s against {r['raw']:,.0f} raw "
            f"({100 * r['overhead']:+.1f}%)"
        )
    print("\n## SB3 PPO, Pendulum, 4 envs\n")
    for r in results["sb3_ppo"]:
        print(f"- {r['env']}: {r['steps_per_second']:,.0f} env steps/s")
    lat = results["mapping_latency"]
    print(
        f"\n## Mapping prediction\n\n- one task: {lat['single_median_ms']:.3f} ms (median), "
        f"{lat['parameters_out']:,} parameters out; {lat['batch']} tasks in one batch: "
        f"{lat['batch_ms']:.1f} ms"
    )
    print("\n## rl objective rollouts (16 Pendulum tasks)\n")
    for r in results["rl"]:
        print(f"- {r['rollouts']}: {r['steps_per_second']:,.0f} env steps/s (with PPO updates)")
    td3 = results["td3"]
    print(f"\n## Off-policy gradient steps (Pendulum, batches of {td3['batch']})\n")
    print(
        f"- td3 objective: {td3['updates_per_second']:,.0f} gradient steps/s; rollouts "
        f"{td3['rollout_env_steps_per_second']:,.0f} env steps/s (16 tasks)"
    )
    for r in results["sb3_off_policy"]:
        ratio = r["updates_per_second"] / td3["updates_per_second"]
        print(
            f"- SB3 {r['algo']}: {r['updates_per_second']:,.0f} gradient steps/s "
            f"({ratio:.2f}x the td3 objective's)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings (a smoke run)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seconds = 0.2 if args.quick else 1.5
    results = {
        "vector_envs": vector_envs((16, 256) if args.quick else (16, 256, 4096), seconds),
        "wrappers": wrappers(seconds),
        "sb3_ppo": sb3_ppo(1024 if args.quick else 8192),
        "mapping_latency": mapping_latency(50 if args.quick else 1000),
        "rl": rl_rollouts(1 if args.quick else 5),
        "td3": td3_objective(seconds if args.quick else 8.0),
        "sb3_off_policy": sb3_off_policy(20 if args.quick else 1000),
    }
    _print(results)
    if args.json:
        from meta_rl.infra.files import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
