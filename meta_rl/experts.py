"""Aligned experts: one base policy, then one expert per training task fine-tuned from it.

Fine-tuning every expert from the same base keeps all of them in one basin of weight space,
so ``theta_i - theta_base`` is a meaningful regression target and their behaviours are
smooth in the task (see DESIGN.md). Experts train in worker processes and are cached on
disk under a key of everything that determines them, so a second run reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize
from tqdm.auto import tqdm

from meta_rl.divergence import DivergenceGuard
from meta_rl.envs import Family, Task, families, get_family
from meta_rl.evaluation import evaluate_params
from meta_rl.io import load_tensors, save_tensors
from meta_rl.parallel import run_jobs
from meta_rl.policy_spec import PolicyArch, PolicySpec, plain_params
from meta_rl.recipes import Recipe

logger = logging.getLogger(__name__)

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C}
EXPERT_CHUNKS = 5
"""An expert's budget is spent in this many chunks, with an evaluation after each."""
EXPERT_PATIENCE = 0.02
"""Stop an expert after a chunk that improves its best return by less than this fraction."""
EXPERT_MIN_FRACTION = 0.6
"""Every expert gets at least this fraction of its budget before it may stop early (a
fine-tune that starts far from a solution can sit on a plateau for a while)."""
A2C_KEYS = {"n_steps", "gamma", "gae_lambda", "learning_rate", "ent_coef", "vf_coef"}


def make_agent(
    family: Family,
    task: Mapping[str, float] | None,
    arch: PolicyArch,
    settings: Mapping[str, Any],
    *,
    n_envs: int,
    seed: int,
    params: torch.Tensor | None = None,
    algo: str = "ppo",
    spec: PolicySpec | None = None,
    env: gym.Env | None = None,
) -> BaseAlgorithm:
    """An SB3 PPO (or A2C) on ``task`` whose ``MlpPolicy`` has architecture ``arch``.

    With ``params``, the policy carries those parameters and its optimizer is rebuilt
    afterwards, so no optimizer state of other parameters leaks into the fine-tune.

    Args:
        family: The family.
        task: The task (validated); ignored when ``env`` is given.
        arch: Policy architecture.
        settings: Algorithm keyword arguments (``n_steps``, ``learning_rate``,
            ``verbose``, ``tensorboard_log``, ...; without the last two the model logs
            nothing, see :func:`silence`), and two more for runs from scratch:
            ``normalize`` (wrap the env in ``VecNormalize``) and ``policy_kwargs`` (merged
            over ``arch``'s, e.g. gSDE's ``log_std_init``). Read such a model's
            parameters with :func:`meta_rl.policy_spec.plain_params`.
        n_envs: Parallel envs (a ``DummyVecEnv``).
        seed: Seed of the algorithm and the envs.
        params: Flat policy parameters to start from.
        algo: ``"ppo"`` or ``"a2c"``.
        spec: The spec of ``arch`` (built if not given).
        env: An env (or VecEnv) to train on instead of ``n_envs`` copies of ``task``.
    """
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    kwargs = dict(settings)
    verbose = int(kwargs.pop("verbose", 0))
    normalize = bool(kwargs.pop("normalize", False))
    policy_kwargs = {**arch.policy_kwargs(), **kwargs.pop("policy_kwargs", {})}
    if params is not None and (normalize or kwargs.get("use_sde")):
        raise ValueError(
            "a warm start needs plain PPO settings: these use gSDE or VecNormalize, which "
            "the flat parameters cannot carry (use the recipe's `ppo`, not `scratch_ppo`)"
        )
    if env is None:
        task = family.task_space.validate(task)
        env = make_vec_env(family.id, n_envs=n_envs, seed=seed, env_kwargs={"task": task})
    if normalize:
        env = VecNormalize(env, gamma=float(kwargs.get("gamma", 0.99)))
    if algo == "a2c":
        kwargs = {k: v for k, v in kwargs.items() if k in A2C_KEYS}
    model = ALGOS[algo](
        "MlpPolicy",
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        verbose=verbose,
        **kwargs,
    )
    if not verbose and kwargs.get("tensorboard_log") is None:
        silence(model)  # nothing asked for logs: SB3 would still make a folder per learn
    if params is not None:
        spec = spec or PolicySpec(arch)
        spec.load_into(model.policy, params)
        rebuild_optimizer(model)
    return model


def silence(model: BaseAlgorithm) -> BaseAlgorithm:
    """Give ``model`` a logger with no outputs. SB3's default logger, even at verbose 0,
    makes an empty ``SB3-<time>`` folder in the temp dir at every ``learn``: thousands of
    them over a benchmark. :func:`make_agent` does this unless ``verbose`` or
    ``tensorboard_log`` is among the settings; to log from a silenced model, give it a
    logger: ``model.set_logger(stable_baselines3.common.logger.configure(folder, ["stdout"]))``."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def rebuild_optimizer(model: BaseAlgorithm) -> None:
    """A fresh optimizer over the policy's current parameters (after loading new ones)."""
    policy = model.policy
    lr = model.lr_schedule(1.0)
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr, **policy.optimizer_kwargs)


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


def _key(data: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


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
    key = _key(
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


def _expert_job(job: _ExpertJob) -> tuple[torch.Tensor, dict[str, Any]]:
    """Worker: fine-tune the base on one task in chunks; the best policy seen and its record.

    The caller writes the result to ``job.out``, so a worker never needs the caller's disk.

    The budget goes where the expert is still improving: once it has had
    ``EXPERT_MIN_FRACTION`` of its budget, training stops after a chunk that improves the
    best return by less than ``EXPERT_PATIENCE`` (relative); a task gets at most the
    chunks that reach ``expert_steps``. The base counts as a candidate, so an expert is
    never worse on its task than the base.
    """
    torch.set_num_threads(1)
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
            :mod:`meta_rl.parallel`).
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
        key = _key(
            {
                "family": family.id,
                "task": task,
                "base": params_hash(base),
                "recipe": recipe_json,
                "arch": arch.to_json(),
                "seed": seed + i,
                "episodes": recipe.expert_episodes,
                "stopping": [EXPERT_CHUNKS, EXPERT_PATIENCE, EXPERT_MIN_FRACTION],
                "chunks": "whole rollouts",  # an expert of the older rule is not reused
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
    builtin = family.name in families() and family.env_cls.__module__.startswith("meta_rl.")
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
            workers=workers if builtin else 0,
            backend=backend if builtin else "local",
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
    "make_agent",
    "rebuild_optimizer",
    "train_base",
    "train_experts",
]
