"""Task spaces: the named, bounded parameters that tell one environment of a family from another.

A :class:`TaskSpace` is an ordered list of :class:`Feature` objects. It validates tasks (plain
``dict`` of physical values), samples them from a seeded generator, turns them into the
normalised float32 **descriptor** in ``[-1, 1]`` that a mapping network reads, and back, and
makes reproducible train/validation/test splits.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from meta_rl.errors import CheckpointError, ConfigError, FamilyError, TaskError

Task = dict[str, float]
"""A task: feature name to physical value."""

FeatureKind = Literal["dynamics", "reward"]
FeatureScale = Literal["linear", "log"]
SplitKind = Literal["interpolation", "extrapolation"]
SPLIT_KINDS: tuple[str, ...] = ("interpolation", "extrapolation")
TABLE_COLUMNS: tuple[str, ...] = ("name", "default", "bounds", "unit", "kind", "scale", "doc")
"""Columns of :meth:`TaskSpace.table`."""


@dataclass(frozen=True, kw_only=True)
class Feature:
    """One parameter of a task.

    Attributes:
        name: Identifier, used as the task dictionary's key.
        default: Value of the unmodified environment.
        low: Smallest allowed value.
        high: Largest allowed value.
        unit: Physical unit, for tables (``""`` for dimensionless).
        kind: ``"dynamics"`` if it changes the transition function, ``"reward"`` if it changes
            the reward only.
        scale: ``"log"`` where the feature spans a ratio (a mass, a power): the descriptor is
            then linear in ``log(value)``. Requires ``low > 0``.
        doc: One line on what the feature does.
    """

    name: str
    default: float
    low: float
    high: float
    unit: str = ""
    kind: FeatureKind = "dynamics"
    scale: FeatureScale = "linear"
    doc: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise FamilyError(f"feature name {_short(self.name)} must be a Python identifier")
        for attr in ("unit", "doc"):
            if not isinstance(getattr(self, attr), str):
                raise FamilyError(f"feature {self.name!r}: {attr} must be a string")
        for attr in ("default", "low", "high"):
            value = getattr(self, attr)
            try:
                value = float(value) if _is_real(value) else math.nan
            except (OverflowError, ValueError):  # an int beyond float's range
                value = math.nan
            if not math.isfinite(value):
                raise FamilyError(f"feature {self.name!r}: {attr} must be a finite number")
            object.__setattr__(self, attr, value)
        if not self.low < self.high:
            raise FamilyError(f"feature {self.name!r}: low ({self.low}) must be below high")
        if not self.low <= self.default <= self.high:
            raise FamilyError(
                f"feature {self.name!r}: default {self.default} is outside [{self.low}, "
                f"{self.high}]"
            )
        if self.kind not in ("dynamics", "reward"):
            raise FamilyError(f"feature {self.name!r}: kind must be 'dynamics' or 'reward'")
        if self.scale not in ("linear", "log"):
            raise FamilyError(f"feature {self.name!r}: scale must be 'linear' or 'log'")
        if self.scale == "log" and self.low <= 0:
            raise FamilyError(f"feature {self.name!r}: a log-scale feature needs low > 0")

    @property
    def bounds_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"[{self.low:g}, {self.high:g}]{unit}"

    def check(self, value: object, *, extrapolate: bool = False) -> float:
        """Return ``value`` as a float, or raise ``TaskError`` naming the feature and bounds.

        With ``extrapolate``, finite values outside the bounds pass (positive ones only, for
        a log-scale feature).
        """
        if not _is_real(value):
            raise TaskError(
                f"task feature {self.name!r} must be a number in {self.bounds_text}, "
                f"got {_short(value)} ({type(value).__name__})"
            )
        try:
            value = float(value)  # type: ignore[arg-type]
        except (OverflowError, ValueError):  # an int (or Fraction) beyond float's range
            raise TaskError(
                f"task feature {self.name!r} must be a finite number in {self.bounds_text}, "
                f"got {_short(value)}, too large for a float"
            ) from None
        if not math.isfinite(value):
            raise TaskError(
                f"task feature {self.name!r} must be a finite number in {self.bounds_text}, "
                f"got {value}"
            )
        if extrapolate:
            if self.scale == "log" and value <= 0:
                raise TaskError(
                    f"task feature {self.name!r}={value:g} must be positive (log scale; "
                    f"bounds {self.bounds_text})"
                )
            return value
        if not self.low <= value <= self.high:
            raise TaskError(
                f"task feature {self.name!r}={value:g} is out of bounds {self.bounds_text}; "
                "choose a value inside the bounds"
            )
        return value

    def normalise(self, value: np.ndarray | float) -> np.ndarray:
        """Map physical values to ``[-1, 1]`` (linearly in ``log`` for log-scale features)."""
        lo, hi, v = self.low, self.high, np.asarray(value, dtype=np.float64)
        if self.scale == "log":
            lo, hi, v = math.log(lo), math.log(hi), np.log(v)
        return 2.0 * (v - lo) / (hi - lo) - 1.0

    def denormalise(self, z: np.ndarray | float) -> np.ndarray:
        """Inverse of :meth:`normalise`."""
        lo, hi = self.low, self.high
        if self.scale == "log":
            lo, hi = math.log(lo), math.log(hi)
        v = lo + (np.asarray(z, dtype=np.float64) + 1.0) * 0.5 * (hi - lo)
        return np.exp(v) if self.scale == "log" else v


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _short(value: object, limit: int = 40) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters.

    An int of more than 4,300 digits has no ``repr`` (Python refuses to convert it), and a
    long one would swamp the message; both are described by their size instead.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        digits = int(int(value).bit_length() * math.log10(2)) + 1
        if digits > limit:
            return f"an integer of about {digits} digits"
    try:
        text = repr(value)
    except ValueError:  # a Fraction of huge ints, say
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class TaskSplit:
    """Disjoint train, validation and test tasks."""

    train: list[Task]
    val: list[Task]
    test: list[Task]


@dataclass(frozen=True)
class TaskSpace:
    """An ordered set of task features.

    Args:
        features: The features, in descriptor order. Names must be unique.
    """

    features: tuple[Feature, ...] = field(default_factory=tuple)

    def __init__(self, features: Sequence[Feature]) -> None:
        features = tuple(features)
        if not features:
            raise FamilyError("a task space needs at least one feature")
        if not all(isinstance(f, Feature) for f in features):
            raise FamilyError("task space features must be meta_rl.envs.Feature objects")
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise FamilyError(f"duplicate feature names in {names}")
        object.__setattr__(self, "features", features)

    # ----------------------------------------------------------------- basics
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def dim(self) -> int:
        """Length of the descriptor."""
        return len(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def default_task(self) -> Task:
        return {f.name: f.default for f in self.features}

    # ------------------------------------------------------------- validation
    def validate(
        self,
        task: Mapping[str, object] | None,
        *,
        complete: bool = False,
        extrapolate: bool = False,
    ) -> Task:
        """Check a task and fill missing features with their defaults.

        Args:
            task: Feature name to physical value; ``None`` means the default task.
            complete: If true, every feature must be given (a missing one is an error).
            extrapolate: Accept finite values outside the bounds (log-scale features must
                stay positive). For deliberate extrapolation only.

        Returns:
            A new dict with every feature, in the space's order, as floats.

        Raises:
            ValueError: unknown feature, missing feature (with ``complete``), a value that is
                not a real number, not finite, or out of bounds. The message names the feature
                and its bounds.
        """
        if task is None:
            task = {}
        if not isinstance(task, Mapping):
            raise TaskError(
                f"a task must be a dict of feature values, got {type(task).__name__}; "
                f"features: {self.describe_bounds()}"
            )
        unknown = [k for k in task if k not in self.names]
        if unknown:
            raise TaskError(
                f"unknown task feature {unknown[0]!r}; known features: {self.describe_bounds()}"
            )
        out: Task = {}
        for f in self.features:
            if f.name in task:
                out[f.name] = f.check(task[f.name], extrapolate=extrapolate)
            elif complete:
                raise TaskError(
                    f"missing task feature {f.name!r} (bounds {f.bounds_text}); "
                    "give a value for every feature"
                )
            else:
                out[f.name] = f.default
        return out

    def describe_bounds(self) -> str:
        return ", ".join(f"{f.name} in {f.bounds_text}" for f in self.features)

    def contains(self, task: Mapping[str, object]) -> bool:
        try:
            self.validate(task)
        except ValueError:
            return False
        return True

    # ------------------------------------------------------------ descriptors
    def to_descriptor(self, task: Mapping[str, object], *, extrapolate: bool = False) -> np.ndarray:
        """Normalised float32 descriptor of a task (missing features take defaults).

        Args:
            task: Physical values.
            extrapolate: Allow values outside the bounds (the descriptor then leaves [-1, 1]).
        """
        full = self.validate(task, extrapolate=extrapolate)
        return np.array([f.normalise(full[f.name]) for f in self.features], dtype=np.float32)

    def from_descriptor(self, descriptor: Sequence[float] | np.ndarray) -> Task:
        """Physical task of a descriptor (values clipped into the bounds)."""
        try:
            d = np.asarray(descriptor, dtype=np.float64).reshape(-1)
        except (OverflowError, TypeError, ValueError) as err:
            raise TaskError(f"descriptor must be {self.dim} finite numbers ({err})") from None
        if d.shape != (self.dim,):
            raise TaskError(f"descriptor must have {self.dim} values, got {d.shape[0]}")
        if not np.all(np.isfinite(d)):
            raise TaskError("descriptor must be finite")
        return {
            f.name: float(np.clip(f.denormalise(z), f.low, f.high))
            for f, z in zip(self.features, d, strict=True)
        }

    # --------------------------------------------------------------- sampling
    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> list[Task]:
        """Draw ``n`` tasks uniformly in descriptor space (log-uniform on log features).

        Args:
            n: Number of tasks.
            rng: A ``np.random.Generator`` or a seed.
        """
        if n < 0:
            raise ConfigError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(rng)
        z = rng.uniform(-1.0, 1.0, size=(n, self.dim))
        return [self.from_descriptor(row) for row in z]

    def sampler(self):
        """A task sampler (``rng -> task``) drawing uniformly from this space."""

        def draw(rng: np.random.Generator) -> Task:
            return self.sample(1, rng)[0]

        return draw

    def split(
        self,
        n_train: int,
        n_test: int,
        *,
        n_val: int = 0,
        kind: SplitKind = "interpolation",
        seed: int = 0,
        holdout_feature: str | None = None,
        holdout_fraction: float = 0.25,
    ) -> TaskSplit:
        """Make reproducible, disjoint train/validation/test task lists.

        Args:
            n_train: Number of training tasks.
            n_test: Number of test tasks.
            n_val: Number of validation tasks (for early stopping and choices of settings).
            kind: ``"interpolation"``: every set drawn from the whole space.
                ``"extrapolation"``: test tasks come from a held-out region at the upper edge
                of one feature (its top ``holdout_fraction`` in descriptor space); training and
                validation tasks never enter it.
            seed: Seed of the draw; the same seed gives the same split.
            holdout_feature: Feature whose edge is held out (default: the first feature).
            holdout_fraction: Width of the held-out region, as a fraction of the feature's
                normalised range.
        """
        for name, n in (("n_train", n_train), ("n_test", n_test), ("n_val", n_val)):
            if not isinstance(n, int) or n < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {n!r}")
        # One independent stream per set: changing how many training tasks there are never
        # changes the validation or test tasks, so results stay comparable.
        rng_train, rng_val, rng_test = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
        )
        i, edge = self._holdout(kind, holdout_feature, holdout_fraction)

        def draw(rng: np.random.Generator, n: int, outside: bool) -> list[Task]:
            z = rng.uniform(-1.0, 1.0, size=(n, self.dim))
            if kind == "extrapolation":
                z[:, i] = (
                    rng.uniform(edge, 1.0, size=n) if outside else rng.uniform(-1.0, edge, size=n)
                )
            return [self.from_descriptor(row) for row in z]

        return TaskSplit(
            train=draw(rng_train, n_train, outside=False),
            val=draw(rng_val, n_val, outside=False),
            test=draw(rng_test, n_test, outside=True),
        )

    def _holdout(
        self, kind: str, holdout_feature: str | None, holdout_fraction: float
    ) -> tuple[int, float]:
        """The held-out feature's index and the descriptor value where its held-out edge
        starts (1.0, nothing held out, for an interpolation split)."""
        if kind == "interpolation":
            return 0, 1.0
        if kind != "extrapolation":
            raise ConfigError(
                f"split kind must be 'interpolation' or 'extrapolation', got {kind!r}"
            )
        if not 0.0 < holdout_fraction < 1.0:
            raise ConfigError("holdout_fraction must be in (0, 1)")
        name = holdout_feature or self.features[0].name
        if name not in self.names:
            raise ConfigError(f"unknown holdout feature {name!r}; known: {self.names}")
        return self.names.index(name), 1.0 - 2.0 * holdout_fraction

    def training_region(
        self,
        kind: SplitKind = "interpolation",
        *,
        holdout_feature: str | None = None,
        holdout_fraction: float = 0.25,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The descriptor box that a split's training and validation tasks come from: the
        bounds, less the held-out edge of an extrapolation split (``split``'s arguments)."""
        i, edge = self._holdout(kind, holdout_feature, holdout_fraction)
        low, high = -np.ones(self.dim, np.float32), np.ones(self.dim, np.float32)
        high[i] = edge
        return low, high

    # ----------------------------------------------------------- presentation
    def table(self) -> str:
        """The features as a Markdown table: name, default, bounds, unit, kind, scale, doc.

        Columns are padded so the table also reads as plain text. Family env docstrings
        embed it (see ``meta_rl.envs.TaskEnv``), so it is the one description of a family's
        features.
        """
        rows = [TABLE_COLUMNS] + [
            (
                f"`{f.name}`",
                f"{f.default:g}",
                f"[{f.low:g}, {f.high:g}]",
                f.unit,
                f.kind,
                f.scale,
                f.doc.replace("|", "\\|"),
            )
            for f in self.features
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]

        def line(cells: Sequence[str]) -> str:
            padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            return "| " + " | ".join(padded) + " |"

        rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
        return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])

    def to_json(self) -> list[dict[str, object]]:
        return [
            {
                "name": f.name,
                "default": f.default,
                "low": f.low,
                "high": f.high,
                "unit": f.unit,
                "kind": f.kind,
                "scale": f.scale,
                "doc": f.doc,
            }
            for f in self.features
        ]

    @classmethod
    def from_json(cls, data: Sequence[Mapping[str, object]]) -> TaskSpace:
        """The task space :meth:`to_json` wrote.

        Raises:
            CheckpointError: anything but a non-empty list of feature objects, each with
                the fields of :class:`Feature` (name, default, low and high required) and
                values it accepts.
        """
        if not isinstance(data, list) or not data:
            raise CheckpointError("malformed task space in metadata: not a list of features")
        fields = set(Feature.__dataclass_fields__)
        features = []
        for i, item in enumerate(data):
            if not isinstance(item, Mapping) or not all(isinstance(k, str) for k in item):
                raise CheckpointError(
                    f"malformed task space in metadata: feature {i} is not an object"
                )
            unknown = sorted(set(item) - fields)
            missing = [k for k in ("name", "default", "low", "high") if k not in item]
            if unknown or missing:
                raise CheckpointError(
                    f"malformed task space in metadata: feature {i} has unknown fields "
                    f"{unknown} or lacks {missing}"
                )
            try:
                features.append(Feature(**item))  # type: ignore[arg-type]
            except (TypeError, FamilyError) as err:
                raise CheckpointError(f"malformed task space in metadata: {err}") from None
        try:
            return cls(features)
        except FamilyError as err:
            raise CheckpointError(f"malformed task space in metadata: {err}") from None
