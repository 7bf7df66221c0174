"""Aligned experts: one base policy, then one expert per training task fine-tuned from it.

Fine-tuning every expert from the same base keeps all of them in one basin of weight space,
so ``theta_i - theta_base`` is a meaningful regression target and their behaviours are
smooth in the task (the docs' method page explains why). Experts train in worker
processes and are cached on disk under a key of everything that determines them, so a
second run reuses them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from meta_rl.envs import Family, Task, families, get_family
from meta_rl.evaluation import evaluate_params
from meta_rl.infra.divergence import DivergenceGuard
from meta_rl.infra.files import load_tensors, save_tensors
from meta_rl.infra.keys import cache_key
from meta_rl.infra.parallel import run_jobs
from meta_rl.infra.sb3 import make_agent
from meta_rl.infra.threads import torch_threads
from meta_rl.mapping.policy import PolicyArch, PolicySpec, plain_params
from meta_rl.training.recipes import Recipe

logger = logging.getLogger(__name__)

EXPERT_CHUNKS = 5
"""An expert's budget is spent in this many chunks, with an evaluation after each."""
EXPERT_PATIENCE = 0.02
"""Stop an expert after a chunk that improves its best return by less than this fraction."""
EXPERT_MIN_FRACTION = 0.6
"""Every expert gets at least this fraction of its budget before it may stop early (a
fine-tune that starts far from a solution can sit on a plateau for a while)."""


class _Progress(BaseCallback):
    def __init__(self, bar: tqdm):
        super().__init__()
        self.bar = bar

    def _on_step(self) -> bool:
        self.bar.update(self.model.n_envs)
        return True


@dataclass(frozen=True)
class Expert:
    """A policy fine-tuned from the base on one task.

    Attributes:
        task: The task.
        params: Flat policy parameters.
        return_mean: Its deterministic return on the task.
        base_return: The base policy's deterministic return on the task.
        steps: Env steps of its fine-tune: whole PPO rollouts, up to the first past the
            recipe's ``expert_steps``.
        env_steps: Every env step it cost: PPO's whole rollouts and its evaluation episodes.
    """

    task: Task
    params: torch.Tensor
    return_mean: float
    base_return: float
    steps: int
    env_steps: int


def params_hash(params: torch.Tensor) -> str:
    return hashlib.sha1(params.detach().cpu().numpy().tobytes()).hexdigest()[:16]


def train_base(
    family: Family,
    recipe: Recipe,
    arch: PolicyArch,
    *,
    seed: int,
    cache_dir: Path | None,
    progress: bool = True,
) -> tuple[torch.Tensor, int]:
    """The base policy (PPO on the default task, cached under ``cache_dir``) and the env
    steps it took."""
    key = cache_key(
        {
            "family": family.id,
            "ppo": recipe.scratch,
            "n_envs": recipe.n_envs,
            "steps": recipe.base_steps,
            "arch": arch.to_json(),
            "seed": seed,
        }
    )
    path = cache_dir / f"base-{key}.safetensors" if cache_dir else None
    spec = PolicySpec(arch)
    if path is not None and path.exists():
        tensors, meta = load_tensors(path)
        logger.info("reusing the base policy in %s", path)
        return tensors["params"], int(meta.get("env_steps", recipe.base_steps))
    model = make_agent(
        family,
        family.task_space.default_task(),
        arch,
        recipe.scratch,
        n_envs=recipe.n_envs,
        seed=seed,
    )
    with tqdm(
        total=recipe.base_steps, desc="base policy", unit="step", disable=not progress
    ) as bar:
        model.learn(recipe.base_steps, callback=[_Progress(bar), DivergenceGuard()])
    params = plain_params(model, spec)
    steps = int(model.num_timesteps)
    if path is not None:
        save_tensors(
            path,
            {"params": params},
            {"kind": "base", "family": family.id, "seed": seed, "env_steps": steps},
        )
    return params, steps


@dataclass(frozen=True)
class _ExpertJob:
    family: str
    task: Task
    arch: dict[str, Any]
    recipe: dict[str, Any]
    base: torch.Tensor
    seed: int
    out: str
    eval_episodes: int


@torch_threads(1)  # one thread per job; the caller's count is given back
def _expert_job(job: _ExpertJob) -> tuple[torch.Tensor, dict[str, Any]]:
    """Worker: fine-tune the base on one task in chunks; the best policy seen and its record.

    The caller writes the result to ``job.out``, so a worker never needs the caller's disk.

    The budget goes where the expert is still improving: once it has had
    ``EXPERT_MIN_FRACTION`` of its budget, training stops after a chunk that improves the
    best return by less than ``EXPERT_PATIENCE`` (relative); a task gets at most the
    chunks that reach ``expert_steps``. The base counts as a candidate, so an expert is
    never worse on its task than the base.
    """
    family = get_family(job.family)
    arch = PolicyArch.from_json(job.arch)
    spec = PolicySpec(arch)
    base = job.base
    model = make_agent(
        family,
        job.task,
        arch,
        job.recipe["ppo"],
        n_envs=job.recipe["n_envs"],
        seed=job.seed,
        params=base,
        spec=spec,
    )

    eval_lengths: list[int] = []

    def score(params: torch.Tensor) -> float:
        return evaluate_params(
            spec,
            params,
            family,
            job.task,
            episodes=job.eval_episodes,
            seed=job.seed,
            lengths=eval_lengths,
        )

    base_return = best_return = score(base)
    best, steps = base, 0
    budget = int(job.recipe["expert_steps"])
    # Chunks of whole rollouts: SB3 always finishes one, so a chunk shorter than a rollout
    # would cost a whole rollout while counting less (LunarLander's is 16 x 1024 steps).
    rollout = model.n_steps * model.n_envs
    chunk = rollout * max(1, round(budget / EXPERT_CHUNKS / rollout))
    guard = DivergenceGuard()  # a diverged chunk ends the fine-tune; the best is kept
    while steps < budget and not guard.diverged:
        model.learn(chunk, reset_num_timesteps=steps == 0, callback=guard)
        steps = int(model.num_timesteps)
        params = spec.flatten(model.policy)
        ret = score(params)
        gain = ret - best_return
        if gain > 0:
            best, best_return = params, ret
        if (
            steps >= budget * EXPERT_MIN_FRACTION
            and gain < EXPERT_PATIENCE * abs(best_return) + 1.0
        ):
            break
    return (
        best,
        {
            "kind": "expert",
            "family": family.id,
            "task": job.task,
            "return_mean": best_return,
            "base_return": base_return,
            "steps": steps,
            # every env step this expert cost: PPO's (whole rollouts) and its evaluations
            "env_steps": int(model.num_timesteps) + sum(eval_lengths),
            "seed": job.seed,
        },
    )


def _load_expert(path: Path) -> Expert:
    tensors, meta = load_tensors(path)
    return Expert(
        task=meta["task"],
        params=tensors["params"],
        return_mean=meta["return_mean"],
        base_return=meta["base_return"],
        steps=meta["steps"],
        env_steps=int(meta.get("env_steps", meta["steps"])),
    )


def train_experts(
    family: Family,
    tasks: Sequence[Task],
    base: torch.Tensor,
    recipe: Recipe,
    arch: PolicyArch,
    *,
    seed: int,
    cache_dir: Path,
    workers: int = 2,
    backend: str = "local",
    progress: bool = True,
) -> list[Expert]:
    """One expert per task, fine-tuned from ``base``; cached experts are reused.

    Args:
        family: The family.
        tasks: Training tasks.
        base: Flat parameters of the base policy.
        recipe: Budgets and PPO settings.
        arch: Policy architecture.
        seed: Seed; expert ``i`` uses ``seed + i``.
        cache_dir: Where experts are stored.
        workers: Worker processes (0 trains in this process). Families defined in user
            code (not built in) always train in this process.
        backend: ``"local"`` (processes here) or ``"ray"`` (Ray tasks; see
            :mod:`meta_rl.infra.parallel`).
        progress: Show a progress bar.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    base_path = cache_dir / f"base-{params_hash(base)}.safetensors"
    if not base_path.exists():
        save_tensors(base_path, {"params": base}, {"kind": "base", "family": family.id})
    jobs = []
    recipe_json = {"ppo": recipe.ppo, "n_envs": recipe.n_envs, "expert_steps": recipe.expert_steps}
    for i, task in enumerate(tasks):
        key = cache_key(
            {
                "family": family.id,
                "task": task,
                "base": params_hash(base),
                "recipe": recipe_json,
                "arch": arch.to_json(),
                "seed": seed + i,
                "episodes": recipe.expert_episodes,
                "stopping": [EXPERT_CHUNKS, EXPERT_PATIENCE, EXPERT_MIN_FRACTION],
            }
        )
        jobs.append(
            _ExpertJob(
                family=family.name,
                task=dict(task),
                arch=arch.to_json(),
                recipe=recipe_json,
                base=base,
                seed=seed + i,
                out=str(cache_dir / f"expert-{key}.safetensors"),
                eval_episodes=recipe.expert_episodes,
            )
        )
    todo = [j for j in jobs if not Path(j.out).exists()]
    if len(todo) < len(jobs):
        logger.info("reusing %d cached experts", len(jobs) - len(todo))
    # Workers know a family whose module they can import (the pool's initializer imports
    # every registered family's); one made in a script trains here.
    importable = family.name in families() and (
        family.env_cls.__module__.startswith("meta_rl.") or family.module is not None
    )
    with tqdm(
        total=len(jobs),
        initial=len(jobs) - len(todo),
        desc="experts",
        unit="expert",
        disable=not progress,
    ) as bar:

        def save(index: int, result: tuple[torch.Tensor, dict[str, Any]]) -> None:
            save_tensors(todo[index].out, {"params": result[0]}, result[1])
            bar.update(1)

        run_jobs(
            _expert_job,
            [(j,) for j in todo],
            workers=workers if importable else 0,
            backend=backend if importable else "local",
            on_done=save,
        )
    return [_load_expert(Path(j.out)) for j in jobs]


def expert_table(experts: Sequence[Expert]) -> list[dict[str, Any]]:
    """Experts as JSON rows, for the training log."""
    return [
        {
            "task": e.task,
            "return_mean": e.return_mean,
            "base_return": e.base_return,
            "steps": e.steps,
            "env_steps": e.env_steps,
        }
        for e in experts
    ]


__all__ = [
    "Expert",
    "train_base",
    "train_experts",
]
