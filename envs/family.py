"""Environment families: a Gymnasium env class plus a task space, registered under one id.

Every family env inherits :class:`TaskEnv`, which gives it the public contract::

    env = gym.make("meta_rl/Pendulum-v0", task={"m": 1.5})
    env.unwrapped.task_space      # TaskSpace
    env.unwrapped.task            # {"m": 1.5, "l": 1.0, ...}
    env.unwrapped.set_task({...}) # validated; missing features take defaults
    env.unwrapped.descriptor      # float32, normalised to [-1, 1]

:func:`make_family` builds a family from any Gymnasium env and a list of features.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from meta_rl.errors import FamilyError, TaskError

from .task_space import Feature, Task, TaskSpace

ApplyFn = Callable[[gym.Env, Task], None]
FeatureApply = str | Callable[[gym.Env, float], None]


TASK_FEATURES_HEADING = "## Task features"


def document_task_features(doc: str, space: TaskSpace) -> str:
    """``doc``, cleaned of its indentation, with ``space``'s feature table at the end of its
    "## Task features" section.

    A docstring without that section gets one before "## Version History" (or at the end).
    One that already holds the table is returned as it is (cleaned).
    """
    doc = inspect.cleandoc(doc)
    table = space.table()
    if table in doc:
        return doc
    lines = doc.splitlines()
    headings = [i for i, line in enumerate(lines) if line.startswith("## ")]
    section = next((i for i in headings if lines[i].rstrip() == TASK_FEATURES_HEADING), None)
    if section is None:
        at = next((i for i in headings if lines[i].lower().startswith("## version")), len(lines))
        insert = [TASK_FEATURES_HEADING, "", table]
    else:
        at = next((i for i in headings if i > section), len(lines))
        insert = [table]
    before, after = lines[:at], lines[at:]
    while before and not before[-1].strip():
        before.pop()
    return "\n".join([*before, "", *insert, *([""] if after else []), *after])


class TaskEnv:
    """Mixin for an env whose physics or reward depends on a task.

    Subclasses set the class attribute ``task_space`` and implement :meth:`_apply_task`, which
    must push the task into *instance* state (never module or class globals) and update every
    derived quantity. Put ``TaskEnv`` first among the bases. The constructor takes ``task``
    and ``extrapolate`` (accept values outside the bounds) by keyword and passes every other
    argument to the base env (``render_mode``, LunarLander's ``continuous``, ...).

    A base-env keyword the family cannot honour is refused at construction with a
    ``ValueError`` naming it: one named like a task feature (the task sets it), and those in
    ``refused_kwargs``.

    A subclass's docstring gets the task space's feature table (:func:`document_task_features`).
    """

    task_space: ClassVar[TaskSpace]
    refused_kwargs: ClassVar[Mapping[str, str]] = {}
    """Base-env keywords this family refuses, each with the reason given in the error."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        space = getattr(cls, "task_space", None)
        doc = cls.__dict__.get("__doc__")
        if isinstance(space, TaskSpace) and doc:
            cls.__doc__ = document_task_features(doc, space)

    def __init__(
        self,
        *args: Any,
        task: Mapping[str, float] | None = None,
        extrapolate: bool = False,
        **kwargs: Any,
    ):
        self._refuse_kwargs(kwargs)
        # Fail on a bad task before building anything heavy.
        task = self.task_space.validate(task, extrapolate=extrapolate)
        super().__init__(*args, **kwargs)
        self._task: Task = {}
        self.set_task(task, extrapolate=extrapolate)

    @classmethod
    def _refuse_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
        """Raise ``FamilyError`` for the first base-env keyword the family cannot honour."""
        for key in kwargs:
            if key in cls.task_space.names:
                raise FamilyError(
                    f"{cls.__name__} does not take {key}={kwargs[key]!r}: {key!r} is a task "
                    f"feature of this family; pass task={{{key!r}: ...}} instead (bounds "
                    f"{cls.task_space[key].bounds_text})"
                )
            if key in cls.refused_kwargs:
                raise FamilyError(
                    f"{cls.__name__} does not take {key}={kwargs[key]!r}: {cls.refused_kwargs[key]}"
                )

    @property
    def task(self) -> Task:
        """The current task (a copy)."""
        return dict(self._task)

    @property
    def descriptor(self) -> np.ndarray:
        """The current task's normalised descriptor (float32, in [-1, 1]; a copy)."""
        return self._descriptor.copy()

    def set_task(self, task: Mapping[str, float] | None, *, extrapolate: bool = False) -> None:
        """Switch to ``task``; missing features take their defaults.

        Dynamics features take effect at once where the env allows it and at the latest on
        the next ``reset``; the family's docstring says which.

        Args:
            task: Feature values.
            extrapolate: Accept finite values outside the bounds (deliberate extrapolation;
                the env may then behave in ways its docstring does not promise).

        Raises:
            TaskError: an unknown feature or a bad value (the message names the bounds);
                with ``extrapolate``, a value outside the bounds that the env cannot take
                (a negative torque limit that would make its action space empty, say). The
                env then keeps its previous task.
        """
        full = self.task_space.validate(task, extrapolate=extrapolate)
        previous = self._task
        try:
            self._apply_checked(full)
        except TaskError:
            self._task = previous
            if previous:  # empty while the env is being built
                self._apply_task(previous)
            raise
        # Computed once per task: wrappers read it at every step.
        self._descriptor = self.task_space.to_descriptor(full, extrapolate=True)

    def _apply_checked(self, task: Task) -> None:
        """Apply ``task``; where values outside the bounds leave the env unusable (applying
        them fails, or the spaces they make are invalid), raise ``TaskError`` naming them.

        Inside the bounds the family promises a working env, so any error there is a bug
        and propagates as it is.
        """
        space = self.task_space
        outside = [f for f in space.features if not f.low <= task[f.name] <= f.high]
        if not outside:
            self._task = task
            self._apply_task(task)
            return
        why = self._try_apply(task)
        if why is None:
            return
        # Name the values that break the env on their own (the others inside the bounds);
        # all of them where only their combination does.
        inside = {f.name: min(max(task[f.name], f.low), f.high) for f in space.features}
        culprits = [f for f in outside if self._try_apply({**inside, f.name: task[f.name]})]
        named = culprits or outside
        if culprits:
            why = self._try_apply({**inside, culprits[0].name: task[culprits[0].name]}) or why
        values = " and ".join(f"{f.name!r}={task[f.name]:g}" for f in named)
        bounds = ", ".join(f"{f.name} in {f.bounds_text}" for f in named)
        one = len(named) == 1
        raise TaskError(
            f"task feature{'' if one else 's'} {values} {'is' if one else 'are'} outside the "
            f"bounds ({bounds}), where the env cannot be extrapolated to: {why}; choose "
            f"{'a value' if one else 'values'} nearer the bounds"
        )

    def _try_apply(self, task: Task) -> str | None:
        """Apply ``task``; ``None`` if the env is then valid, else what went wrong."""
        env: gym.Env = self  # type: ignore[assignment]
        name = type(self).__name__
        self._task = task  # what the env holds while it applies it, as in set_task
        try:
            with np.errstate(all="ignore"):
                self._apply_task(task)
        except (ValueError, TypeError, ArithmeticError, AssertionError) as err:
            return f"{name} {_space_error(err)}"
        for kind, sp in (("observation", env.observation_space), ("action", env.action_space)):
            problem = _box_problem(sp)
            if problem:
                return f"{name}'s {kind} space would {problem}"
        return None

    def _apply_task(self, task: Task) -> None:
        raise NotImplementedError

    def widest_spaces(self) -> tuple[gym.Space, gym.Space]:
        """Observation and action spaces that hold every task of the family.

        Wrappers that change the task within one env (a new task at every reset) declare
        these. Families whose spaces follow the task override this.
        """
        env: gym.Env = self  # type: ignore[assignment]
        return env.observation_space, env.action_space


def _box_problem(space: gym.Space) -> str | None:
    """What makes a Box space invalid (NaN bounds, a low above its high), or ``None``."""
    if not isinstance(space, gym.spaces.Box):
        return None
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if np.isnan(low).any() or np.isnan(high).any():
        return "have an undefined (NaN) bound"
    if (low > high).any():
        return f"be empty (its low {low.tolist()} above its high {high.tolist()})"
    try:  # a copy: the env's own random stream stays as it was
        copy.deepcopy(space).sample()
    except (ValueError, ArithmeticError) as err:  # a zero-width bound from 0.0 to -0.0, say
        return f"be unusable: sampling from it fails ({err})"
    return None


def _space_error(err: BaseException) -> str:
    """Why applying a task failed, in words a task's author can act on (Gymnasium's
    complaints about a space's bounds, most often)."""
    text = str(err)
    if "can be equal to `np.nan`" in text:
        return "would get an undefined (NaN) bound on its observation or action space"
    if "low values must be less than or equal to high" in text:
        return "would get an empty observation or action space (a low bound above its high)"
    return f"fails to apply it ({type(err).__name__}: {text})"


@dataclass(frozen=True)
class Family:
    """A registered family.

    Attributes:
        name: Short name (``"Pendulum"``), as used by the command line.
        id: Gymnasium id (``"meta_rl/Pendulum-v0"``).
        env_cls: The env class (a :class:`TaskEnv`).
        task_space: Its task space.
        max_episode_steps: Time limit set by ``gym.make``.
        summary: One line for ``meta-rl families``.
        kwargs: Fixed keyword arguments of the registration.
        recipe: The family's own :class:`~meta_rl.training.recipes.Recipe` (``None``: a
            built-in family's, or one derived from the env; see
            :func:`~meta_rl.training.recipes.recipe_for`).
        module: The module that defines the family (imported again where a checkpoint of
            it is loaded, or named in the error where it cannot be); ``None`` where it was
            defined in a script.
    """

    name: str
    id: str
    env_cls: type
    task_space: TaskSpace
    max_episode_steps: int | None
    summary: str
    kwargs: Mapping[str, Any]
    recipe: Any = None
    module: str | None = None

    def make(self, task: Mapping[str, float] | None = None, **kwargs: Any) -> gym.Env:
        """Build an env of the family: ``gym.make(self.id, task=task, **kwargs)``."""
        if self.id:
            return gym.make(self.id, task=task, **kwargs)
        env = self.env_cls(task=task, **{**self.kwargs, **kwargs})
        if self.max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, self.max_episode_steps)
        return env

    def make_vec(
        self, num_envs: int, tasks: Sequence[Mapping[str, float]] | None = None, **kwargs: Any
    ) -> gym.vector.VectorEnv:
        """``num_envs`` envs of the family, one task each (default: the default task).

        Families with batched dynamics (``meta_rl.envs.vector``) step all of them in one
        NumPy operation; others fall back to Gymnasium's ``SyncVectorEnv``.
        """
        from .vector import FamilyVectorEnv, batched_families

        if tasks is None or isinstance(tasks, Mapping):
            tasks = [tasks] * num_envs if isinstance(num_envs, int) else [tasks]
        try:
            tasks = list(tasks)
        except TypeError:
            raise TaskError(
                f"tasks must be a list of tasks (dicts of feature values, or None for the "
                f"default task), got {type(tasks).__name__}"
            ) from None
        for i, task in enumerate(tasks):
            if task is not None and not isinstance(task, Mapping):
                raise TaskError(
                    f"task {i} must be a dict of feature values (or None for the default "
                    f"task), got {type(task).__name__}"
                )
        if self.name.lower() in batched_families():
            # None is the default task, as everywhere else.
            return FamilyVectorEnv(
                self, num_envs, [{} if t is None else t for t in tasks], **kwargs
            )
        if len(tasks) != num_envs:
            raise TaskError(f"expected {num_envs} tasks (one per sub-env), got {len(tasks)}")
        return gym.vector.SyncVectorEnv(
            [lambda t=t: self.make(task=t, **kwargs) for t in tasks]  # type: ignore[misc]
        )

    @property
    def discrete(self) -> bool:
        return isinstance(self.make().action_space, gym.spaces.Discrete)


_FAMILIES: dict[str, Family] = {}


def register_family(
    name: str,
    env_cls: type,
    *,
    max_episode_steps: int | None,
    summary: str = "",
    kwargs: Mapping[str, Any] | None = None,
    version: int = 0,
    vector_entry_point: Callable[..., gym.vector.VectorEnv] | None = None,
    recipe: Any = None,
    module: str | None = "",
) -> Family:
    """Register ``env_cls`` (a :class:`TaskEnv`) as ``meta_rl/<name>-v<version>``.

    ``vector_entry_point`` is what ``gym.make_vec(id, num_envs, vectorization_mode=
    "vector_entry_point")`` builds. ``recipe`` is the family's own
    :class:`~meta_rl.training.recipes.Recipe`; ``module`` the module that defines the
    family (default, ``""``: ``env_cls``'s; ``None``: a script's). Registering the same
    name again replaces the earlier family.
    """
    _check_recipe(recipe)
    if not (isinstance(env_cls, type) and issubclass(env_cls, TaskEnv)):
        raise FamilyError(f"{env_cls!r} is not a TaskEnv subclass; use make_family for plain envs")
    if not name.replace("_", "").isalnum():
        raise FamilyError(f"family name {name!r} must be letters, digits and underscores")
    env_id = f"meta_rl/{name}-v{version}"
    kwargs = dict(kwargs or {})
    if env_id in gym.registry:
        del gym.registry[env_id]
    gym.register(
        id=env_id,
        entry_point=env_cls,
        max_episode_steps=max_episode_steps,
        kwargs=kwargs,
        vector_entry_point=vector_entry_point,
    )
    family = Family(
        name=name,
        id=env_id,
        env_cls=env_cls,
        task_space=env_cls.task_space,
        max_episode_steps=max_episode_steps,
        summary=summary or (inspect.getdoc(env_cls) or "").split("\n")[0],
        kwargs=kwargs,
        recipe=recipe,
        module=_importable(env_cls.__module__ if module == "" else module),
    )
    _FAMILIES[name.lower()] = family
    return family


def _check_recipe(recipe: Any) -> None:
    if recipe is None:  # the usual case: nothing to import (import meta_rl stays light)
        return
    from meta_rl.training.recipes import Recipe

    if not isinstance(recipe, Recipe):
        raise FamilyError(
            "recipe must be a meta_rl.training.recipes.Recipe (or None for an automatic "
            f"one), got {type(recipe).__name__}"
        )


def _importable(module: str | None) -> str | None:
    """``module``, or ``None`` for a script's (``__main__``), which no other process can
    import by that name."""
    return None if module in (None, "__main__", "__mp_main__") else module


def _caller_module(depth: int = 2) -> str | None:
    """The module of the function that called the caller (where a family is defined)."""
    frame = inspect.currentframe()
    for _ in range(depth):
        frame = frame.f_back if frame is not None else None
    return _importable(frame.f_globals.get("__name__")) if frame is not None else None


def families() -> dict[str, Family]:
    """All registered families, by name."""
    return {f.name: f for f in _FAMILIES.values()}


ENTRY_POINT_GROUP = "meta_rl.families"
"""The entry-point group through which installed packages provide families: each entry's
name is a family's, its value a module that registers the family when imported
(``make_family`` at import time) or a function of no arguments that does."""


def load_entry_points(name: str | None = None, *, errors: list[str] | None = None) -> list[str]:
    """Load the :data:`ENTRY_POINT_GROUP` entries named ``name`` (case-insensitive; every
    entry where ``None``); returns the names loaded.

    Raises:
        FamilyError: an entry that fails to load, with its error (where ``errors`` is
            given, the message is appended to it instead and the other entries load).
    """
    from importlib.metadata import entry_points

    loaded = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if name is not None and entry.name.lower() != name.lower():
            continue
        try:
            target = entry.load()
            if callable(target) and not isinstance(target, type):
                target()
        except Exception as err:
            message = (
                f"family {entry.name}: its entry point {entry.value} (group "
                f"{ENTRY_POINT_GROUP}) failed to load: {type(err).__name__}: {err}"
            )
            if errors is None:
                raise FamilyError(message) from err
            errors.append(message)
            continue
        loaded.append(entry.name)
    return loaded


def get_family(name_or_id: str) -> Family:
    """Look a family up by name (case-insensitive) or Gymnasium id; a family that no
    imported module registered is looked for among the installed packages' entry points
    (:data:`ENTRY_POINT_GROUP`).

    Raises:
        ValueError: no such family; the message lists the known ones.
    """
    key = name_or_id.lower()
    if key in _FAMILIES:
        return _FAMILIES[key]
    for family in _FAMILIES.values():
        if family.id.lower() == key:
            return family
    if load_entry_points(key) and key in _FAMILIES:
        return _FAMILIES[key]
    from .registry import UNAVAILABLE

    if key in UNAVAILABLE:
        raise FamilyError(UNAVAILABLE[key])
    known = ", ".join(sorted(f.name for f in _FAMILIES.values()))
    raise FamilyError(
        f"unknown family {name_or_id!r}; known families: {known}. A family of your own: "
        "import the module that defines it first (on the command line: --module NAME), or "
        f"install it with a {ENTRY_POINT_GROUP} entry point"
    )


def family_of(env: gym.Env) -> TaskEnv:
    """The :class:`TaskEnv` under any wrappers, or a clear error."""
    base = env.unwrapped
    if not isinstance(base, TaskEnv):
        raise FamilyError(
            f"{type(base).__name__} is not a meta_rl family env; make one with "
            "gym.make('meta_rl/<Family>-v0') or meta_rl.envs.make_family"
        )
    return base


def make_family(
    name: str,
    env: str | type[gym.Env],
    features: Sequence[Feature],
    apply: ApplyFn | Mapping[str, FeatureApply],
    *,
    max_episode_steps: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    summary: str = "",
    register: bool = True,
    version: int = 0,
    recipe: Any = None,
    module: str | None = None,
) -> Family:
    """Build a family over any Gymnasium env.

    Args:
        name: Family name; registered as ``meta_rl/<name>-v<version>``.
        env: A registered Gymnasium id (``"CartPole-v1"``) or an env class.
        features: The task features.
        apply: How a task reaches the env. Either one function ``apply(env, task)`` or a
            mapping from feature name to an attribute name (set with ``setattr``) or to a
            function ``fn(env, value)``. It runs on construction and at every
            ``set_task``; it receives the unwrapped env and must update every derived
            quantity.
        max_episode_steps: Time limit (default: the Gymnasium id's own, if any).
        env_kwargs: Keyword arguments of the env constructor.
        summary: One line for ``meta-rl families``.
        register: Register with Gymnasium (and ``meta_rl.envs.families()``).
        version: Version number of the id.
        recipe: How to train and fine-tune agents of the family (a
            :class:`~meta_rl.training.recipes.Recipe`); default: one derived from the env
            at the start of training and logged (:mod:`meta_rl.training.auto`).
        module: The importable module that defines the family (default: the caller's).
            A checkpoint records it, so that loading it in another process imports it;
            a family made in a script (``__main__``) has none, and loading its checkpoint
            elsewhere says to move ``make_family`` into a module.

    Returns:
        The :class:`Family`; ``family.make(task=...)`` builds an env.

    Example:
        >>> from meta_rl.envs import Feature, make_family
        >>> fam = make_family(
        ...     "WindyMountainCar", "MountainCarContinuous-v0",
        ...     [Feature(name="power", default=0.0015, low=0.001, high=0.003, scale="log")],
        ...     apply={"power": "power"},
        ... )
        >>> env = fam.make(task={"power": 0.002})
    """
    _check_recipe(recipe)
    module = _importable(module) if module is not None else _caller_module()
    features = list(features)
    space = TaskSpace(features)
    env_kwargs = dict(env_kwargs or {})
    if isinstance(env, str):
        try:
            spec = gym.spec(env)
        except gym.error.Error as err:
            raise FamilyError(f"make_family: unknown Gymnasium id {env!r}") from err
        base = spec.entry_point
        if isinstance(base, str):
            base = gym.envs.registration.load_env_creator(base)
        if not isinstance(base, type):
            raise FamilyError(f"make_family: {env!r} has no env class as entry point")
        env_kwargs = {**spec.kwargs, **env_kwargs}
        if max_episode_steps is None:
            max_episode_steps = spec.max_episode_steps
    else:
        base = env
    if not (isinstance(base, type) and issubclass(base, gym.Env)):
        raise FamilyError(f"make_family: env must be a Gymnasium id or Env class, got {env!r}")

    if callable(apply):
        apply_fn: ApplyFn = apply  # type: ignore[assignment]
    elif isinstance(apply, Mapping):
        missing = [f.name for f in features if f.name not in apply]
        extra = [k for k in apply if k not in space.names]
        if missing or extra:
            raise FamilyError(
                f"make_family: apply must name every feature once; missing {missing}, "
                f"unknown {extra}"
            )
        per_feature = dict(apply)

        def apply_fn(target: gym.Env, task: Task) -> None:
            for key, how in per_feature.items():
                if isinstance(how, str):
                    setattr(target, how, task[key])
                else:
                    how(target, task[key])
    else:
        raise FamilyError("make_family: apply must be a function or a mapping of features")

    def _apply_task(self: TaskEnv, task: Task) -> None:
        apply_fn(self, task)  # type: ignore[arg-type]

    cls = type(
        f"{name}Env",
        (TaskEnv, base),
        {
            "task_space": space,
            "_apply_task": _apply_task,
            "__doc__": summary or f"{base.__name__} with task features {space.names}.",
            "__module__": base.__module__,
        },
    )
    if not register:
        return Family(
            name=name,
            id="",
            env_cls=cls,
            task_space=space,
            max_episode_steps=max_episode_steps,
            summary=summary,
            kwargs=env_kwargs,
            recipe=recipe,
            module=module,
        )
    return register_family(
        name,
        cls,
        max_episode_steps=max_episode_steps,
        summary=summary or f"{base.__name__} family: {', '.join(space.names)}",
        kwargs=env_kwargs,
        version=version,
        recipe=recipe,
        module=module,  # the caller's, not the env class's (a Gymnasium module, for an id)
    )
