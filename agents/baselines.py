"""Baselines that are SB3 agents: the context-conditioned multi-task policies (PPO, and SAC
for continuous actions) and the recurrent policy for a task that is not given.

(The two a user compares against first, the default-task expert and the zero-shot
prediction, are :func:`meta_rl.agents.base_policy` and :func:`meta_rl.agents.adapt` before
any ``learn``; :func:`meta_rl.agents.evaluate` scores them on seeded episodes.)

The strongest alternative a user has: one policy that sees the task descriptor in its
observation and meets a new training task at every reset, trained by PPO or, for
continuous actions, by SAC (the off-policy counterpart, fair against a mapping trained by an
off-policy objective). Given the same env steps as the mapping pipeline, it is what the
mapping has to beat.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
from tqdm.auto import tqdm

from meta_rl.envs import DescriptorObservation, Family, Task, TaskResampling
from meta_rl.errors import ConfigError
from meta_rl.evaluation import run_episodes
from meta_rl.infra.files import load_optimizer, load_tensors, optimizer_tensors, save_tensors
from meta_rl.infra.keys import cache_key
from meta_rl.infra.sb3 import make_agent
from meta_rl.mapping.policy import PolicyArch
from meta_rl.training.recipes import Recipe

from .threads import DEFAULT_THREADS, scope_learn, torch_threads


class StepProgress(BaseCallback):
    """A tqdm bar over env steps. SB3's own ``progress_bar`` needs ``rich``, which is not a
    dependency of this project."""

    def __init__(self, total: int, desc: str, initial: int = 0) -> None:
        super().__init__()
        self.total, self.desc, self.initial = total, desc, initial
        self.bar: Any = None

    def _on_training_start(self) -> None:
        if self.bar is None:  # one bar over the ``learn`` calls of a run in chunks
            self.bar = tqdm(total=self.total, initial=self.initial, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        if self.bar.n >= self.total:
            self.bar.close()


def make_context_env(family: Family, tasks: Sequence[Mapping[str, float]]):
    """A family env that draws one of ``tasks`` at every reset and shows its descriptor."""
    return DescriptorObservation(_hidden_task_env(family, tasks))


def train_context_policy(
    family: Family,
    tasks: Sequence[Task],
    recipe: Recipe,
    *,
    steps: int,
    seed: int,
    progress_bar: bool = False,
    threads: int | None = DEFAULT_THREADS,
) -> PPO:
    """PPO on ``n_envs`` envs that resample their task from ``tasks`` at every reset.

    Args:
        family: The family.
        tasks: Training tasks.
        recipe: The family's recipe (PPO settings, envs, policy sizes).
        steps: Env steps, usually those the mapping pipeline spent in total.
        seed: Seed of PPO and of the envs' task draws.
        progress_bar: Show a progress bar.
        threads: Torch threads while it builds and learns, here and in later ``learn``
            calls (see :mod:`meta_rl.agents.threads`); ``None``: torch's setting.
    """
    if not tasks:
        raise ConfigError("the context-conditioned policy needs at least one training task")
    env = make_vec_env(lambda: make_context_env(family, tasks), n_envs=recipe.n_envs, seed=seed)
    arch = PolicyArch(
        obs_dim=int(env.observation_space.shape[0]),
        action_kind="discrete" if hasattr(env.action_space, "n") else "box",
        action_dim=int(getattr(env.action_space, "n", 0) or env.action_space.shape[0]),
        pi=recipe.pi,
        vf=recipe.vf,
        activation=recipe.activation,
        log_std_init=recipe.log_std_init,
    )
    with torch_threads(threads):
        model = make_agent(
            family, None, arch, recipe.scratch, n_envs=recipe.n_envs, seed=seed, env=env
        )
    model = scope_learn(model, threads)
    model.learn(steps, callback=StepProgress(steps, "context policy") if progress_bar else None)
    return model


CONTEXT_SAC_CHUNK = 10_000
"""Env steps of the context SAC's chunks: its resume points (see :func:`train_context_sac`)."""


def train_context_sac(
    family: Family,
    tasks: Sequence[Task],
    recipe: Recipe,
    *,
    steps: int,
    seed: int,
    progress_bar: bool = False,
    threads: int | None = DEFAULT_THREADS,
    resume: str | os.PathLike | None = None,
    chunk: int = CONTEXT_SAC_CHUNK,
) -> SAC:
    """SB3's SAC on one env that resamples its task from ``tasks`` at every reset and shows
    its descriptor: the off-policy counterpart of :func:`train_context_policy`, with the
    recipe's SAC settings (those of the oracle's SAC run; SB3's defaults where it has none).

    The run learns in chunks of ``chunk`` env steps, each from fresh seeds drawn from
    ``(seed, chunk index)`` (SB3's generators, the action space's, and the env's, whose
    episode restarts), so where it stops between chunks does not change what it learns.
    With ``resume``, the state after every chunk (networks, optimizers, entropy
    coefficient, replay buffer, counters) is written to that file atomically (safetensors,
    no pickle), and a run that finds the file goes on from it: a resumed run ends with the
    same networks as one never stopped. The file stays after the run ends (it then holds
    the finished run, which the same call returns without learning; an off-policy
    rollout may end a few steps past ``steps``); the caller removes it.

    Args:
        family: The family.
        tasks: Training tasks.
        recipe: The family's recipe (its ``sac`` settings).
        steps: Env steps, usually those the mapping pipeline spent in total.
        seed: Seed of SAC, of the envs' task draws and of every chunk's seeds.
        progress_bar: Show a progress bar.
        threads: Torch threads, as :func:`train_context_policy`'s.
        resume: The resume file (read if present, written after every chunk); ``None``:
            no file, the same chunks.
        chunk: Env steps per chunk.

    Raises:
        ConfigError: no tasks, a family with discrete actions (SAC needs continuous
            ones; the context-conditioned PPO policy serves both), a chunk under 1,
            ``optimize_memory_usage`` in the recipe's SAC settings, or a resume file that
            is not one or was written by a run of other settings.
    """
    if not tasks:
        raise ConfigError("the context-conditioned SAC policy needs at least one training task")
    if chunk < 1:
        raise ConfigError(f"chunk must be at least 1 env step (got {chunk})")
    env = make_vec_env(lambda: make_context_env(family, tasks), n_envs=1, seed=seed)
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise ConfigError(
            f"context-conditioned SAC needs continuous actions; {family.name} has "
            f"{type(env.action_space).__name__} actions (use the context-conditioned PPO policy)"
        )
    settings = dict(recipe.sac or {})
    if settings.get("optimize_memory_usage"):  # its buffer keeps no next observations
        env.close()
        raise ConfigError(
            "the context-conditioned SAC cannot resume with optimize_memory_usage; "
            "leave it out of the recipe's sac settings"
        )
    if steps <= int(settings.get("learning_starts", 100)):  # a smoke budget still learns
        settings["learning_starts"] = max(1, steps // 4)
    run_key = cache_key(
        {
            "family": family.name,
            "tasks": [dict(t) for t in tasks],
            "steps": steps,
            "seed": seed,
            "sac": settings,
            "chunk": chunk,
        }
    )
    with torch_threads(threads):
        model = SAC("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings)
    model = scope_learn(model, threads)
    resume = None if resume is None else Path(resume)
    done_chunks = 0
    if resume is not None and resume.exists():
        done_chunks = _load_sac_state(model, resume, run_key)
    callback = (
        StepProgress(steps, "context SAC", initial=model.num_timesteps) if progress_bar else None
    )
    while model.num_timesteps < steps:
        chunk_seed = int(np.random.SeedSequence([seed, done_chunks]).generate_state(1)[0])
        model.set_random_seed(chunk_seed)  # torch, numpy, the action space, the env's reset
        model._last_obs = None  # so that ``learn`` resets the env with that seed
        model.learn(
            min(chunk, steps - model.num_timesteps), callback=callback, reset_num_timesteps=False
        )
        done_chunks += 1
        if resume is not None:
            _save_sac_state(model, resume, run_key, done_chunks)
    return model


_BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _save_sac_state(model: SAC, path: Path, run_key: str, done_chunks: int) -> None:
    """Write what :func:`_load_sac_state` restores, atomically."""
    buffer = model.replay_buffer
    filled = buffer.buffer_size if buffer.full else buffer.pos
    tensors = {f"policy.{k}": v for k, v in model.policy.state_dict().items()}
    tensors.update(optimizer_tensors(model.actor.optimizer, "optim.actor"))
    tensors.update(optimizer_tensors(model.critic.optimizer, "optim.critic"))
    if model.ent_coef_optimizer is not None:
        tensors["log_ent_coef"] = model.log_ent_coef.detach()
        tensors.update(optimizer_tensors(model.ent_coef_optimizer, "optim.ent_coef"))
    for name in _BUFFER_FIELDS:
        tensors[f"buffer.{name}"] = torch.from_numpy(
            np.ascontiguousarray(getattr(buffer, name)[:filled])
        )
    meta = {
        "run_key": run_key,
        "chunks": done_chunks,
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "buffer_pos": int(buffer.pos),
        "buffer_full": bool(buffer.full),
    }
    save_tensors(path, tensors, meta)


def _load_sac_state(model: SAC, path: Path, run_key: str) -> int:
    """Restore a state :func:`_save_sac_state` wrote into a freshly built ``model`` of the
    same settings; returns the chunks it had done."""
    tensors, meta = load_tensors(path)
    needed = [f"buffer.{name}" for name in _BUFFER_FIELDS]
    if "run_key" not in meta or not all(key in tensors for key in needed):
        raise ConfigError(
            f"{path} is not a context SAC resume file: give the path of one, or a path "
            "that does not exist yet"
        )
    if meta["run_key"] != run_key:
        raise ConfigError(
            f"{path} is the resume file of a context SAC run with other tasks, env steps, "
            "seed, SAC settings or chunk size: delete it to start again, or give another "
            "resume path"
        )
    model.policy.load_state_dict(
        {k[len("policy.") :]: v for k, v in tensors.items() if k.startswith("policy.")}
    )
    load_optimizer(model.actor.optimizer, tensors, "optim.actor")
    load_optimizer(model.critic.optimizer, tensors, "optim.critic")
    if model.ent_coef_optimizer is not None:
        with torch.no_grad():
            model.log_ent_coef.copy_(tensors["log_ent_coef"])
        load_optimizer(model.ent_coef_optimizer, tensors, "optim.ent_coef")
    buffer = model.replay_buffer
    for name in _BUFFER_FIELDS:
        saved = tensors[f"buffer.{name}"].numpy()
        getattr(buffer, name)[: len(saved)] = saved
    buffer.pos, buffer.full = int(meta["buffer_pos"]), bool(meta["buffer_full"])
    model.num_timesteps = int(meta["num_timesteps"])
    model._n_updates = int(meta["n_updates"])
    model._episode_num = int(meta["episode_num"])
    return int(meta["chunks"])


def context_sac_state(model: SAC) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What rebuilds a trained context SAC's policy: its tensors (a safetensors-ready state
    dict of actor and critics) and the settings :func:`rebuild_context_sac` takes."""
    state = {k: v.detach().clone().contiguous() for k, v in model.policy.state_dict().items()}
    kwargs = {k: v for k, v in model.policy_kwargs.items() if k != "activation_fn"}
    return state, {"policy_kwargs": kwargs}


def rebuild_context_sac(
    family: Family, tasks: Sequence[Task], state: Mapping[str, Any], meta: Mapping[str, Any]
) -> Any:
    """The context SAC's policy (SB3's ``SACPolicy``) from :func:`context_sac_state`'s
    output, for the spaces of ``tasks``' context env (no pickle involved)."""
    from stable_baselines3.sac.policies import SACPolicy

    env = make_context_env(family, tasks)
    try:
        policy = SACPolicy(
            env.observation_space, env.action_space, lambda _: 0.0, **meta["policy_kwargs"]
        )
    finally:
        env.close()
    policy.load_state_dict(dict(state))
    policy.set_training_mode(False)
    return policy


def evaluate_context_policy(
    model: PPO | SAC | Any, family: Family, task: Mapping[str, float], *, episodes: int, seed: int
) -> float:
    """Mean deterministic return of a context-conditioned policy on one task: a trained
    model (PPO or SAC), or a policy :func:`rebuild_context_sac` gave."""
    env = DescriptorObservation(family.make(task=task))
    # A recipe's runs from scratch may normalise (PPO's); a bare policy never does.
    norm = model.get_vec_normalize_env() if hasattr(model, "get_vec_normalize_env") else None
    try:

        def act(obs: np.ndarray) -> Any:
            if norm is not None:
                obs = norm.normalize_obs(obs)
            return model.predict(obs, deterministic=True)[0]

        return float(np.mean(run_episodes(env, act, episodes=episodes, seed=seed)))
    finally:
        env.close()


RECURRENT_LSTM = 64
"""Hidden units of the recurrent baseline's LSTM (one layer, actor and critic each)."""


def _hidden_task_env(family: Family, tasks: Sequence[Task]):
    """A family env that draws one of ``tasks`` at every reset and does not show it."""
    return TaskResampling(family.make(), [dict(t) for t in tasks])


def train_recurrent_policy(
    family: Family,
    tasks: Sequence[Task],
    recipe: Recipe,
    *,
    steps: int,
    seed: int,
    progress_bar: bool = False,
    threads: int | None = DEFAULT_THREADS,
) -> Any:
    """The baseline for a task that is not given: sb3-contrib's ``RecurrentPPO`` (an LSTM
    policy that must tell the task from its own history), on ``n_envs`` envs that resample
    their task from ``tasks`` at every reset, with the recipe's PPO settings for runs from
    scratch and its actor and critic sizes after the LSTM."""
    from sb3_contrib import RecurrentPPO

    if not tasks:
        raise ConfigError("the recurrent policy needs at least one training task")
    env = make_vec_env(lambda: _hidden_task_env(family, tasks), n_envs=recipe.n_envs, seed=seed)
    settings = {k: v for k, v in recipe.scratch.items() if k not in ("use_sde", "sde_sample_freq")}
    own_kwargs = dict(settings.pop("policy_kwargs", None) or {})
    if settings.pop("normalize", False):  # as the recipe's runs from scratch normalise
        env = VecNormalize(env, gamma=float(settings.get("gamma", 0.99)))
    rollout = int(settings.get("n_steps", 2048))
    if steps < rollout * recipe.n_envs:  # a budget under one rollout (smoke runs) shrinks it
        settings["n_steps"] = max(16, steps // recipe.n_envs)
        settings["batch_size"] = min(int(settings.get("batch_size", 64)), settings["n_steps"])
    policy_kwargs = {
        "log_std_init": recipe.log_std_init,
        **{k: v for k, v in own_kwargs.items() if k != "net_arch"},
        "net_arch": {"pi": list(recipe.pi), "vf": list(recipe.vf)},
        "lstm_hidden_size": RECURRENT_LSTM,
    }
    if hasattr(env.action_space, "n"):
        policy_kwargs.pop("log_std_init")
    with torch_threads(threads):
        model = RecurrentPPO(
            "MlpLstmPolicy", env, seed=seed, verbose=0, policy_kwargs=policy_kwargs, **settings
        )
        callback = StepProgress(steps, "recurrent policy") if progress_bar else None
        model.learn(steps, callback=callback)
    return model


def recurrent_policy_state(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What rebuilds a trained recurrent baseline's policy: its tensors (a safetensors-ready
    state dict, with the observation statistics of a ``VecNormalize`` it trained in) and
    the settings :func:`rebuild_recurrent_policy` takes."""
    state = {k: v.detach().clone().contiguous() for k, v in model.policy.state_dict().items()}
    kwargs = {k: v for k, v in model.policy_kwargs.items() if k != "activation_fn"}
    meta: dict[str, Any] = {"policy_kwargs": kwargs}
    norm = model.get_vec_normalize_env()
    if norm is not None:
        state["obs_mean"] = torch.as_tensor(norm.obs_rms.mean, dtype=torch.float32)
        state["obs_var"] = torch.as_tensor(norm.obs_rms.var, dtype=torch.float32)
        meta["normalize"] = {"clip_obs": float(norm.clip_obs), "epsilon": float(norm.epsilon)}
    return state, meta


def rebuild_recurrent_policy(
    family: Family, tasks: Sequence[Task], state: Mapping[str, Any], meta: Mapping[str, Any]
) -> Any:
    """The recurrent baseline's policy from :func:`recurrent_policy_state`'s output, for the
    spaces of ``tasks``' resampling env (no pickle involved)."""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    env = _hidden_task_env(family, tasks)
    try:
        policy = RecurrentActorCriticPolicy(
            env.observation_space, env.action_space, lambda _: 0.0, **meta["policy_kwargs"]
        )
    finally:
        env.close()
    state = dict(state)
    norm = meta.get("normalize")
    obs_mean, obs_var = state.pop("obs_mean", None), state.pop("obs_var", None)
    policy.load_state_dict(state)
    policy.set_training_mode(False)
    if norm is not None:  # the observations as VecNormalize showed them in training
        scale = np.sqrt(obs_var.numpy() + norm["epsilon"])
        policy.meta_rl_obs_norm = lambda obs: np.clip(
            (obs - obs_mean.numpy()) / scale, -norm["clip_obs"], norm["clip_obs"]
        )
    return policy


def evaluate_recurrent_policy(
    policy: Any, family: Family, task: Mapping[str, float], *, episodes: int, seed: int
) -> float:
    """Mean deterministic return of a recurrent policy (``RecurrentPPO``'s, or one
    :func:`rebuild_recurrent_policy` made) on one task, its LSTM state reset at each
    episode's start; episode ``i`` is reset with ``seed + i``. A policy rebuilt from a
    ``VecNormalize`` run sees its observations normalised as in training; pass such a
    model's rebuilt policy, not ``model.policy``."""
    env = family.make(task=task)
    returns = []
    try:
        env.action_space.seed(seed)
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            state, start, total, done = None, np.ones((1,), dtype=bool), 0.0, False
            normalize = getattr(policy, "meta_rl_obs_norm", None)
            while not done:
                seen = obs if normalize is None else normalize(obs)
                action, state = policy.predict(
                    np.asarray(seen, dtype=np.float32)[None],
                    state=state,
                    episode_start=start,
                    deterministic=True,
                )
                start = np.zeros((1,), dtype=bool)
                obs, reward, terminated, truncated, _ = env.step(action[0])
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return float(np.mean(returns))
