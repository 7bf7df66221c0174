"""Batched family environments: one NumPy step for many sub-environments, a task each.

:class:`FamilyVectorEnv` is a Gymnasium ``VectorEnv`` whose sub-environments each hold
their own task; the dynamics are the family's own batched step function (the one its
single environment calls), applied to all sub-environments in one array operation.
:class:`meta_rl.agents.FamilyVecEnv` adapts it to Stable-Baselines3's ``VecEnv``.

Autoreset follows Gymnasium's rules. In the default ``NEXT_STEP`` mode, the step after a
sub-environment terminates or truncates resets it: that step ignores its action and
returns the first observation of the new episode, reward 0, and neither flag. In
``SAME_STEP`` mode the reset happens in the ending step itself, whose observation is then
the new episode's first, and ``infos["final_obs"]`` holds the last one (what SB3 expects):
a float32 array with a row per sub-environment, NaN where it did not end, and the mask
``infos["_final_obs"]``. Unlike Gymnasium's own same-step vector envs there is no
``final_info`` (these envs have no per-step info).

Inputs follow Gymnasium's ``VectorEnv`` contract, as ``SyncVectorEnv`` enforces it:
``step`` takes one action per sub-environment, an element of ``action_space`` (shape
``(num_envs, *single_action_space.shape)``; whole numbers in range for discrete actions),
and refuses to run before ``reset``; ``reset(options={"reset_mask": mask})`` takes a
boolean NumPy array of shape ``(num_envs,)`` with at least one ``True``. Seeds: ``None``
continues the random streams; a list of ``num_envs`` seeds (``None`` entries allowed) gives
sub-environment ``i`` its own stream, seeded with ``seed[i]`` as Gymnasium seeds a single
env, so it starts where ``SyncVectorEnv`` seeded with that list starts; a whole number seeds
one stream that all sub-environments draw from (not Gymnasium's ``seed + i`` per sub-env:
seeded training runs depend on these start states, and consecutive seeds do not share any).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

from meta_rl.errors import FamilyError, TaskError

from .family import Family, get_family
from .task_space import Task

StepFn = Callable[[np.ndarray, np.ndarray, Mapping[str, np.ndarray]], tuple[np.ndarray, ...]]


@dataclass(frozen=True)
class BatchedDynamics:
    """What a family provides for batching: the pieces its single environment is made of.

    Attributes:
        reset: ``(rng, n, tasks) -> states`` of ``n`` new episodes.
        step: ``(states, actions, tasks) -> (states, rewards, terminated)``, batched.
        obs: ``states -> observations`` (float32).

    The sub-environments' spaces are the family's widest (``TaskEnv.widest_spaces``); the
    step function applies each sub-environment's own limits (a torque limit, say).
    """

    reset: Callable[[np.random.Generator, int, Mapping[str, np.ndarray]], np.ndarray]
    step: StepFn
    obs: Callable[[np.ndarray], np.ndarray]


_DYNAMICS: dict[str, Callable[..., BatchedDynamics]] = {}


def register_batched(family_name: str, dynamics: Callable[..., BatchedDynamics]) -> None:
    """Declare the batched dynamics of a family (built lazily, on first use).

    ``dynamics(**env_kwargs)`` builds them. Its keyword parameters are the single env's
    keywords that the batched env honours (CartPole's ``sutton_barto_reward``, say), with
    the single env's defaults; :class:`FamilyVectorEnv` refuses any other keyword.
    """
    _DYNAMICS[family_name.lower()] = dynamics


def batched_kwargs(family_name: str) -> list[str]:
    """The single-env keywords that ``family_name``'s batched env honours."""
    params = inspect.signature(_DYNAMICS[family_name.lower()]).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def batched_families() -> list[str]:
    """Names of the families that have a batched implementation."""
    return sorted(_DYNAMICS)


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """``AutoresetMode.NEXT_STEP``/``SAME_STEP``, or their names in any case."""
    if isinstance(mode, str) and not isinstance(mode, AutoresetMode):
        by_name = {m.name.lower(): m for m in AutoresetMode}
        by_name.update({m.value.lower(): m for m in AutoresetMode})
        mode = by_name.get(mode.lower(), mode)  # type: ignore[assignment]
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise ValueError(f"autoreset_mode must be NEXT_STEP or SAME_STEP, got {mode!r}")
    return mode  # type: ignore[return-value]


class FamilyVectorEnv(VectorEnv):
    """``num_envs`` sub-environments of one family, each with its own task.

    Args:
        family: A family with batched dynamics (``Pendulum``, ``CartPole``,
            ``MountainCarContinuous``, ``Acrobot``), by name or :class:`Family`.
        num_envs: Number of sub-environments.
        tasks: One task per sub-environment, or one task for all (default: the family's
            default task). Missing features take their defaults; out-of-bounds values are
            refused.
        max_episode_steps: Truncation length (default: the family's).
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (Gymnasium's default) or ``SAME_STEP``.
        **env_kwargs: Keywords of the single env that the batched one honours too
            (:func:`batched_kwargs`: CartPole's ``sutton_barto_reward``,
            MountainCarContinuous's ``goal_velocity``).

    Raises:
        ValueError: a family without batched dynamics, a bad task, a wrong number of tasks,
            or a keyword the batched env does not honour (``render_mode``, say: it does not
            render).
    """

    def __init__(
        self,
        family: str | Family,
        num_envs: int,
        tasks: Sequence[Task] | Task | None = None,
        *,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ) -> None:
        self.family = get_family(family) if isinstance(family, str) else family
        key = self.family.name.lower()
        if key not in _DYNAMICS:
            raise ValueError(
                f"family {self.family.name} has no batched environment; those that do: "
                f"{', '.join(batched_families())} (use gymnasium.vector.SyncVectorEnv instead)"
            )
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive whole number, got {num_envs!r}")
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, int)
            or max_episode_steps < 1
        ):
            raise ValueError(
                f"max_episode_steps must be a positive whole number, got {max_episode_steps!r}"
            )
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.num_envs = num_envs
        if max_episode_steps is None:
            max_episode_steps = self.family.max_episode_steps or 1000
        self.max_episode_steps = int(max_episode_steps)
        # The single env checks the keywords first: it refuses those no env of the family
        # honours, with its own reasons.
        probe = self.family.make(**env_kwargs)
        honoured = batched_kwargs(key)
        for name in env_kwargs:
            if name not in honoured:
                probe.close()
                raise FamilyError(
                    f"the batched {self.family.name} env does not take {name!r} (it takes "
                    f"{', '.join(map(repr, honoured)) or 'no env keywords'}); for other "
                    "keywords vectorise the single env with gymnasium.vector.SyncVectorEnv"
                )
        self.dynamics = _DYNAMICS[key](**env_kwargs)
        self.single_observation_space, self.single_action_space = probe.unwrapped.widest_spaces()  # type: ignore[attr-defined]
        probe.close()
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.metadata = {"autoreset_mode": self.autoreset_mode, "render_modes": []}
        self.render_mode = None
        # One stream for all sub-envs (an int seed), or one per sub-env (a list of seeds).
        self._np_random, self._np_random_seed = seeding.np_random()
        self._env_rngs: list[np.random.Generator] | None = None
        self.set_tasks(tasks)
        self.state = self.dynamics.reset(self._np_random, num_envs, self.task_arrays)
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._started = np.zeros(num_envs, dtype=bool)  # reset at least once

    # ------------------------------------------------------------------ tasks
    def set_tasks(self, tasks: Sequence[Task] | Task | None) -> None:
        """Give every sub-environment a task (one task, or one per sub-environment; ``None``
        is the default task).

        A change takes effect at the next step, as in the single environments.
        """
        space = self.family.task_space
        if tasks is None or isinstance(tasks, Mapping):
            tasks = [tasks or {}] * self.num_envs
        tasks = list(tasks)
        if len(tasks) != self.num_envs:
            raise TaskError(f"expected {self.num_envs} tasks (one per sub-env), got {len(tasks)}")
        for t in tasks:
            if t is not None and not isinstance(t, Mapping):
                raise TaskError(f"each task must be a dict of feature values or None, got {t!r}")
        full = [space.validate({**space.default_task(), **(t or {})}, complete=True) for t in tasks]
        self.tasks: list[Task] = full
        self.task_arrays = {
            f.name: np.array([t[f.name] for t in full], dtype=np.float64) for f in space.features
        }

    def set_task(self, index: int, task: Task) -> None:
        """Give sub-environment ``index`` a new task."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise ValueError(f"index must be a whole number, got {index!r}")
        if not 0 <= index < self.num_envs:
            raise ValueError(f"index {index} is not a sub-env (0 to {self.num_envs - 1})")
        tasks = list(self.tasks)
        tasks[index] = task
        self.set_tasks(tasks)

    # ---------------------------------------------------------------- running
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-environment (``options={"reset_mask": mask}``: only those).

        Args:
            seed: ``None`` (continue the random streams), a whole number ``>= 0`` (one stream
                for all sub-environments, seeded with it), or a list of ``num_envs`` of them
                (``None`` entries allowed: a stream each, ``seed[i]`` seeding sub-env ``i``
                as ``SyncVectorEnv`` does; a ``None`` entry continues that sub-env's stream).
                Python ints only, as Gymnasium's seeding (``int(s)`` for NumPy integers).
            options: Only ``{"reset_mask": mask}``, a boolean array of shape ``(num_envs,)``
                with at least one ``True``. The single envs' start-range options (``low``,
                ``high``...) are refused: the batched start states do not honour them.

        Raises:
            TypeError: a seed or mask of the wrong type (a float, a NumPy integer, a list
                mask, a mask that is not boolean).
            ValueError: a negative seed, a list of seeds or a mask of the wrong length, a
                mask without a ``True``.
            FamilyError: an option other than ``reset_mask``.
        """
        mask = self._reset_mask(options)
        seeds = self._check_seed(seed)
        if isinstance(seeds, int):
            self._np_random, self._np_random_seed = seeding.np_random(seeds)
            self._env_rngs = None
        elif seeds is not None:
            if self._env_rngs is None:
                # Sub-envs without a seed of their own continue from the common stream.
                children = self._np_random.integers(0, 2**63, size=self.num_envs)
                self._env_rngs = [seeding.np_random(int(c))[0] for c in children]
            for i in np.flatnonzero(mask):
                if seeds[i] is not None:
                    self._env_rngs[i] = seeding.np_random(seeds[i])[0]
            self._np_random_seed = -1  # no one seed: a stream per sub-env
        self._reset_where(mask)
        return self.dynamics.obs(self.state), {}

    def _check_seed(self, seed: Any) -> int | list[int | None] | None:
        """``seed`` checked as Gymnasium's vector and single envs check it (all of it, before
        anything is reset); an all-``None`` list is ``None``."""

        def whole(s: Any, what: str) -> int:
            # A bool is an int to Gymnasium too.
            if not isinstance(s, int):
                hint = " (pass int(seed))" if isinstance(s, np.integer) else ""
                raise TypeError(
                    f"{what} must be a Python int >= 0 or None, got {s!r} "
                    f"({type(s).__name__}){hint}"
                )
            if s < 0:
                raise ValueError(f"{what} must be >= 0, got {s}")
            return s

        if seed is None:
            return None
        if isinstance(seed, int | np.integer):
            return whole(seed, "seed")
        if isinstance(seed, str | bytes) or not isinstance(seed, Sequence | np.ndarray):
            raise TypeError(
                f"seed must be None, a Python int >= 0 or a list of {self.num_envs} of them "
                f"(one per sub-env), got {seed!r}"
            )
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"a list of seeds must have one per sub-env ({self.num_envs}), got {len(seeds)}"
            )
        checked = [None if s is None else whole(s, f"seed[{i}]") for i, s in enumerate(seeds)]
        return None if all(s is None for s in checked) else checked

    def _reset_mask(self, options: Any) -> np.ndarray:
        """The sub-envs to reset: ``options["reset_mask"]``, checked as ``SyncVectorEnv``
        checks it, or all of them."""
        if options is None:
            return np.ones(self.num_envs, dtype=bool)
        if not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict, got {options!r}")
        other = sorted(map(str, set(options) - {"reset_mask"}))
        if other:
            raise FamilyError(
                f"the batched {self.family.name} env takes no reset option but 'reset_mask' "
                f"(got {', '.join(map(repr, other))}): its start states do not follow the "
                "single env's options; for those vectorise the single env with "
                "gymnasium.vector.SyncVectorEnv"
            )
        if "reset_mask" not in options:
            return np.ones(self.num_envs, dtype=bool)
        mask = options["reset_mask"]
        if not isinstance(mask, np.ndarray):
            raise TypeError(f"reset_mask must be a NumPy array, got {type(mask).__name__}")
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        if mask.dtype != np.bool_:
            raise TypeError(f"reset_mask must have dtype bool, got {mask.dtype}")
        if not mask.any():
            raise ValueError("reset_mask must have at least one True (a sub-env to reset)")
        return mask.copy()

    def _reset_where(self, mask: np.ndarray) -> None:
        if mask.any():
            if self._env_rngs is None:
                tasks = {k: v[mask] for k, v in self.task_arrays.items()}
                self.state[mask] = self.dynamics.reset(self._np_random, int(mask.sum()), tasks)
            else:
                # A stream per sub-env: each draws its start as its single env would.
                for i in np.flatnonzero(mask):
                    tasks = {k: v[i : i + 1] for k, v in self.task_arrays.items()}
                    self.state[i] = self.dynamics.reset(self._env_rngs[i], 1, tasks)[0]
            self.elapsed[mask] = 0
            self._needs_reset[mask] = False
            self._started[mask] = True

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every sub-environment (see the module's autoreset rules).

        Raises:
            ResetNeeded: a sub-environment was never reset (Gymnasium's error for it).
            ValueError: ``actions`` is not an element of ``action_space`` (see
                :meth:`_check_actions`).
        """
        if not self._started.all():
            never = np.flatnonzero(~self._started)
            raise ResetNeeded(
                "call reset() before step()"
                + (f" (sub-envs {never.tolist()} were never reset)" if self._started.any() else "")
            )
        actions = self._check_actions(actions)
        resetting = self._needs_reset.copy()
        state, reward, terminated = self.dynamics.step(self.state, actions, self.task_arrays)
        self.state = state
        self.elapsed += 1
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=bool).copy()
        truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        infos: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            # Sub-envs that ended last step start over now; this step is their reset.
            self._reset_where(resetting)
            reward[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
            self._needs_reset = terminated | truncated
            return self.dynamics.obs(self.state), reward, terminated, truncated, infos
        done = terminated | truncated
        obs = self.dynamics.obs(self.state)
        if done.any():
            infos["final_obs"] = np.where(done[:, None], obs, np.nan).astype(np.float32)
            infos["_final_obs"] = done.copy()
            self._reset_where(done)
            obs = self.dynamics.obs(self.state)
        return obs, reward, terminated, truncated, infos

    def _check_actions(self, actions: Any) -> np.ndarray:
        """``actions`` as an array, if it is an element of ``action_space``: one action per
        sub-env, of the single action space's shape; numbers (or bools) for Box spaces, whole
        numbers in range for discrete ones. Box values beyond the bounds are clipped by the
        dynamics, as the single envs clip them."""
        space = self.single_action_space
        if actions is None:
            raise ValueError(f"actions must be one action per sub-env in {space}, got None")
        array = np.asarray(actions)
        shape = (self.num_envs, *space.shape)
        if array.shape != shape:
            raise ValueError(
                f"actions must have shape {shape} (one action in {space} per sub-env), "
                f"got shape {array.shape}"
            )
        if isinstance(space, gym.spaces.Discrete):
            if (
                not np.issubdtype(array.dtype, np.integer)
                or not ((array >= space.start) & (array < space.start + space.n)).all()
            ):
                raise ValueError(
                    f"actions must be in {space} (whole numbers), got {array!r} ({array.dtype})"
                )
        elif not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or (
            np.issubdtype(array.dtype, np.complexfloating)
        ):
            raise ValueError(f"actions must be real numbers, got {array.dtype} actions")
        return array

    def close_extras(self, **kwargs: Any) -> None:
        pass


def make_vector_env(family: str | Family, num_envs: int, **kwargs: Any) -> FamilyVectorEnv:
    """The batched environment of ``family`` (the registry's ``vector_entry_point``)."""
    return FamilyVectorEnv(family, num_envs, **kwargs)
