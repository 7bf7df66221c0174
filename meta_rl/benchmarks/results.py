"""Typed results of the benchmarks: what ``results.json`` holds, read and written here.

Every aggregate is an :class:`Interval` (a mean with a 95% two-level bootstrap interval over
seeds and tasks), formatted by :meth:`Interval.format` alone. A result converts to JSON
with ``to_json()`` and back with ``from_json()``; the JSON keeps the field names of the
reports published before these types, so those load too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

Curve = list[tuple[int, float | None]]
"""Points ``(env steps, value)`` of a learning curve; a score is ``None`` where undefined."""


def _curve(points: Sequence[Sequence[Any]]) -> Curve:
    return [(int(s), None if v is None else float(v)) for s, v in points]


@dataclass(frozen=True)
class Interval:
    """A mean and its 95% interval; ``None`` throughout where nothing was defined.

    Attributes:
        mean: Mean of the defined values.
        low: Lower end of the interval.
        high: Upper end.
        tasks: Values (task-seeds) it pools.
        seeds: Seeds it pools.
    """

    mean: float | None
    low: float | None
    high: float | None
    tasks: int = 0
    seeds: int = 0

    def format(self, *, digits: int = 3, sign: bool = False, undefined: str = "undefined") -> str:
        """``mean [low, high]``, e.g. ``0.870 [0.749, 0.955]``: the one formatter."""
        if self.mean is None or not math.isfinite(self.mean):
            return undefined
        spec = f"{'+' if sign else ''}.{digits}f"
        return f"{self.mean:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "tasks": self.tasks,
            "seeds": self.seeds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Interval:
        mean = data.get("mean")
        if "ci95" in data:  # reports of one mapping before the bootstrap: mean +- ci95
            half = data["ci95"]
            low, high = (None, None) if mean is None else (mean - half, mean + half)
        else:
            low, high = data.get("low"), data.get("high")
        return cls(mean, low, high, int(data.get("tasks", 0)), int(data.get("seeds", 0)))


UNDEFINED = Interval(None, None, None)


def bootstrap_ci(
    by_seed: Sequence[Sequence[float | None]], *, samples: int = 2000, seed: int = 0
) -> Interval:
    """Mean of the defined values and a 95% two-level bootstrap interval.

    Each resample draws seeds with replacement, then tasks with replacement within each
    drawn seed (one seed: tasks alone). ``None`` (a task whose oracle did not beat random)
    is left out.
    """
    groups = [np.asarray([v for v in g if v is not None], dtype=np.float64) for g in by_seed]
    groups = [g for g in groups if len(g)]
    if not groups:
        return UNDEFINED
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for i in range(samples):
        picked = rng.integers(len(groups), size=len(groups))
        draws = [groups[j][rng.integers(len(groups[j]), size=len(groups[j]))] for j in picked]
        means[i] = np.concatenate(draws).mean()
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(
        mean=float(np.concatenate(groups).mean()),
        low=float(low),
        high=float(high),
        tasks=int(sum(len(g) for g in groups)),
        seeds=len(groups),
    )


STEPS_METHODS = ("mapping_fine_tune", "default_fine_tune", "ppo_scratch")
"""The curves whose env steps to 0.9 of the oracle are recorded per task."""


@dataclass
class TaskRow:
    """Every method on one held-out task: returns, normalised scores, curves.

    Scores are ``None`` where the task's oracle is no better than random. The context
    and MAML fields are ``None`` where those baselines did not run.
    """

    task: dict[str, float]
    random: float
    oracle: float
    oracle_ppo: float
    oracle_sac: float | None
    default_expert: float
    default_expert_score: float | None
    fine_tune_curve: Curve
    fine_tune_scores: Curve
    default_fine_tune_curve: Curve
    default_fine_tune_scores: Curve
    ppo_scratch_curve: Curve
    ppo_scratch_scores: Curve
    steps_to_09: dict[str, int | None]
    """Env steps of the first point at 0.9 of the oracle, per :data:`STEPS_METHODS`."""
    context: float | None = None
    context_score: float | None = None
    context_steps: int | None = None
    maml_before: float | None = None
    maml_before_score: float | None = None
    maml_after: float | None = None
    maml_after_score: float | None = None
    maml_adapt_steps: int | None = None
    maml_meta_steps: int | None = None
    finetunes: dict[str, Curve] | None = None
    """Return curves of every fine-tune, by ``"<start>:<algo>"``: ``prediction:sac``,
    ``expert:ppo``, ``scratch:sac`` (SB3's SAC from scratch, the oracle's run), ..."""
    finetune_scores: dict[str, Curve] | None = None
    steps_to_level: dict[str, dict[str, int | None]] | None = None
    """Env steps of each fine-tune's first point at ``"0.9"`` and ``"0.95"`` of the oracle."""
    seed: int | None = None
    """The run's seed, where rows of several seeds are pooled."""
    inferred: float | None = None
    """The zero-shot return of the prediction for the task a probe inferred."""
    inferred_score: float | None = None
    inferred_probe_steps: int | None = None
    inferred_task: dict[str, float] | None = None
    recurrent: float | None = None
    """The recurrent baseline's return (``RecurrentPPO``, the task hidden)."""
    recurrent_score: float | None = None
    recurrent_steps: int | None = None
    context_sac: float | None = None
    """The context-conditioned SAC baseline's return (the descriptor observed)."""
    context_sac_score: float | None = None
    context_sac_steps: int | None = None

    _CURVES = (
        "fine_tune_curve",
        "fine_tune_scores",
        "default_fine_tune_curve",
        "default_fine_tune_scores",
        "ppo_scratch_curve",
        "ppo_scratch_scores",
    )
    _OPTIONAL = (
        ("context", "context_score", "context_steps"),
        (
            "maml_before",
            "maml_before_score",
            "maml_after",
            "maml_after_score",
            "maml_adapt_steps",
            "maml_meta_steps",
        ),
        ("finetunes", "finetune_scores", "steps_to_level"),
        ("seed",),
        ("inferred", "inferred_score", "inferred_probe_steps", "inferred_task"),
        ("recurrent", "recurrent_score", "recurrent_steps"),
        ("context_sac", "context_sac_score", "context_sac_steps"),
    )

    @property
    def zero_shot_score(self) -> float | None:
        """The mapping's normalised score before any fine-tune (the curve's first point)."""
        return self.fine_tune_scores[0][1]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed} if self.seed is not None else {}
        for f in fields(self):
            if f.name == "seed":
                continue
            value = getattr(self, f.name)
            group = next((g for g in self._OPTIONAL if f.name in g), None)
            if group is not None and all(getattr(self, n) is None for n in group):
                continue  # a baseline that did not run leaves no keys
            out["steps_to_0.9" if f.name == "steps_to_09" else f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskRow:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["steps_to_09"] = dict(data["steps_to_0.9"])
        for name in cls._CURVES:
            kwargs[name] = _curve(data[name])
        for name in ("finetunes", "finetune_scores"):
            if data.get(name) is not None:
                kwargs[name] = {k: _curve(v) for k, v in data[name].items()}
        return cls(**kwargs)


def _intervals(data: Mapping[str, Any]) -> dict[str, Interval]:
    return {k: Interval.from_json(v) for k, v in data.items()}


_SUMMARY_BASELINES = (
    "context",
    "maml_before",
    "maml_after",
    "inferred",
    "recurrent",
    "context_sac",
)
"""The optional scores of a :class:`ScoreSummary`, as its JSON names them."""


@dataclass
class ScoreSummary:
    """One mapping's scores over its test tasks (:class:`ScoreResult`)."""

    default_expert: Interval
    fine_tune: dict[str, Interval]
    """By fine-tune env steps (as a string, the JSON key)."""
    default_fine_tune: dict[str, Interval]
    steps_to_09: dict[str, list[int | None]]
    context: Interval | None = None
    maml_before: Interval | None = None
    maml_after: Interval | None = None
    finetunes: dict[str, dict[str, Interval]] = field(default_factory=dict)
    """Every fine-tune's pooled curve (``TaskRow.finetunes``' keys), by env steps."""
    inferred: Interval | None = None
    """The zero-shot score with the task inferred from a probe (``TaskRow.inferred``)."""
    recurrent: Interval | None = None
    """The recurrent baseline's score (``TaskRow.recurrent``)."""
    context_sac: Interval | None = None
    """The context-conditioned SAC baseline's score (``TaskRow.context_sac``)."""

    @property
    def zero_shot(self) -> Interval | None:
        return self.fine_tune.get("0")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "default_expert": self.default_expert.to_json(),
            "fine_tune": {k: v.to_json() for k, v in self.fine_tune.items()},
            "default_fine_tune": {k: v.to_json() for k, v in self.default_fine_tune.items()},
            "zero_shot": None if self.zero_shot is None else self.zero_shot.to_json(),
        }
        for name in _SUMMARY_BASELINES:
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_json()
        out["steps_to_0.9"] = self.steps_to_09
        if self.finetunes:
            out["finetunes"] = {
                k: {steps: v.to_json() for steps, v in curve.items()}
                for k, curve in self.finetunes.items()
            }
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoreSummary:
        optional = {
            name: Interval.from_json(data[name]) for name in _SUMMARY_BASELINES if name in data
        }
        return cls(
            default_expert=Interval.from_json(data["default_expert"]),
            fine_tune=_intervals(data["fine_tune"]),
            default_fine_tune=_intervals(data["default_fine_tune"]),
            steps_to_09=dict(data["steps_to_0.9"]),
            finetunes={k: _intervals(v) for k, v in data.get("finetunes", {}).items()},
            **optional,
        )


@dataclass
class ScoreResult:
    """``results.json`` of one scored mapping (``meta-rl benchmark --checkpoint``, and each
    run of ``meta-rl benchmark``)."""

    family: str
    checkpoint: str
    objective: str
    budget: str
    episodes: int
    train_env_steps: int | None
    summary: ScoreSummary
    rows: list[TaskRow]
    oracle_budget: str = "full"
    sac_budget: str | None = None
    table: str = ""
    report: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["summary"] = self.summary.to_json()
        out["rows"] = [r.to_json() for r in self.rows]
        if not self.report:
            out.pop("report")
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoreResult:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["summary"] = ScoreSummary.from_json(data["summary"])
        kwargs["rows"] = [TaskRow.from_json(r) for r in data["rows"]]
        return cls(**kwargs)


@dataclass(frozen=True)
class CurvePoint:
    """A point of a pooled score curve: env steps and the interval there."""

    steps: int
    score: Interval

    def to_json(self) -> dict[str, Any]:
        return {"steps": self.steps, **self.score.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CurvePoint:
        return cls(steps=int(data["steps"]), score=Interval.from_json(data))


@dataclass
class SplitSummary:
    """Every seed of one split, pooled (:class:`BenchmarkResult`).

    Attributes:
        context_env_steps: Each run's context-policy budget (its pipeline's env steps).
        maml_adapt_steps: Mean env steps of MAML's inner step.
        targets: The benchmark's targets as measured, each with the figures it is judged
            on (see :func:`meta_rl.benchmarks.benchmark.targets`).
    """

    mapping: list[CurvePoint]
    default_expert: list[CurvePoint]
    ppo_scratch: list[CurvePoint]
    steps_to_09: dict[str, list[int | None]]
    context: Interval | None = None
    context_env_steps: list[int] = field(default_factory=list)
    maml_before: Interval | None = None
    maml_after: Interval | None = None
    maml_adapt_steps: int | None = None
    targets: dict[str, Any] = field(default_factory=dict)
    finetunes: dict[str, list[CurvePoint]] = field(default_factory=dict)
    """Pooled score curves of every fine-tune (``TaskRow.finetunes``' keys)."""
    steps_to_level: dict[str, dict[str, list[int | None]]] = field(default_factory=dict)
    """Per level (``"0.9"``, ``"0.95"``) and fine-tune, each task's env steps to it."""
    inferred: Interval | None = None
    """Zero-shot with the task inferred from a probe of ``inferred_probe_steps``."""
    inferred_probe_steps: int | None = None
    recurrent: Interval | None = None
    """The recurrent baseline (task hidden), trained for ``recurrent_env_steps`` per run."""
    recurrent_env_steps: list[int] = field(default_factory=list)
    context_sac: Interval | None = None
    """The context-conditioned SAC baseline, trained for ``context_sac_env_steps`` per run."""
    context_sac_env_steps: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: [p.to_json() for p in getattr(self, name)]
            for name in ("mapping", "default_expert", "ppo_scratch")
        }
        if self.inferred is not None:
            out["inferred"] = {**self.inferred.to_json(), "probe_steps": self.inferred_probe_steps}
        if self.recurrent is not None:
            out["recurrent"] = {**self.recurrent.to_json(), "env_steps": self.recurrent_env_steps}
        if self.context is not None:
            out["context"] = {**self.context.to_json(), "env_steps": self.context_env_steps}
        if self.context_sac is not None:
            out["context_sac"] = {
                **self.context_sac.to_json(),
                "env_steps": self.context_sac_env_steps,
            }
        if self.maml_before is not None:
            out["maml_before"] = self.maml_before.to_json()
        if self.maml_after is not None:
            out["maml_after"] = {**self.maml_after.to_json(), "adapt_steps": self.maml_adapt_steps}
        out["steps_to_0.9"] = self.steps_to_09
        out["targets"] = self.targets
        if self.finetunes:
            out["finetunes"] = {
                k: [p.to_json() for p in curve] for k, curve in self.finetunes.items()
            }
            out["steps_to_level"] = self.steps_to_level
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SplitSummary:
        curves = {
            name: [CurvePoint.from_json(p) for p in data[name]]
            for name in ("mapping", "default_expert", "ppo_scratch")
        }
        extra: dict[str, Any] = {}
        if "context" in data:
            extra["context"] = Interval.from_json(data["context"])
            extra["context_env_steps"] = list(data["context"].get("env_steps", []))
        if "recurrent" in data:
            extra["recurrent"] = Interval.from_json(data["recurrent"])
            extra["recurrent_env_steps"] = list(data["recurrent"].get("env_steps", []))
        if "context_sac" in data:
            extra["context_sac"] = Interval.from_json(data["context_sac"])
            extra["context_sac_env_steps"] = list(data["context_sac"].get("env_steps", []))
        if "inferred" in data:
            extra["inferred"] = Interval.from_json(data["inferred"])
            extra["inferred_probe_steps"] = data["inferred"].get("probe_steps")
        if "maml_before" in data:
            extra["maml_before"] = Interval.from_json(data["maml_before"])
        if "maml_after" in data:
            extra["maml_after"] = Interval.from_json(data["maml_after"])
            extra["maml_adapt_steps"] = data["maml_after"].get("adapt_steps")
        if "finetunes" in data:
            extra["finetunes"] = {
                k: [CurvePoint.from_json(p) for p in curve]
                for k, curve in data["finetunes"].items()
            }
            extra["steps_to_level"] = dict(data.get("steps_to_level", {}))
        return cls(
            **curves,
            steps_to_09=dict(data["steps_to_0.9"]),
            targets=dict(data.get("targets", {})),
            **extra,
        )


@dataclass
class RunRecord:
    """One (split, seed) run of ``meta-rl benchmark``."""

    split: str
    seed: int
    checkpoint: str
    report: str
    train_env_steps: int
    train_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass
class BenchmarkResult:
    """``results.json`` of ``meta-rl benchmark``: runs over seeds and splits, pooled."""

    family: str
    budget: str
    seeds: int
    episodes: int
    objective: str
    runs: list[RunRecord]
    summary: dict[str, SplitSummary]
    tasks: dict[str, list[TaskRow]]
    """Every seed's rows, by split (each row's ``seed`` set)."""
    oracle_budget: str = "full"
    sac_budget: str | None = None
    seconds: float | None = None
    table: str = ""
    report: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["runs"] = [r.to_json() for r in self.runs]
        out["summary"] = {k: v.to_json() for k, v in self.summary.items()}
        out["tasks"] = {k: [r.to_json() for r in v] for k, v in self.tasks.items()}
        if not self.report:
            out.pop("report")
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchmarkResult:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["runs"] = [RunRecord.from_json(r) for r in data["runs"]]
        kwargs["summary"] = {k: SplitSummary.from_json(v) for k, v in data["summary"].items()}
        kwargs["tasks"] = {k: [TaskRow.from_json(r) for r in v] for k, v in data["tasks"].items()}
        return cls(**kwargs)


@dataclass
class SelectionRun:
    """One (objective, seed) candidate of ``meta-rl select-objective``."""

    objective: str
    seed: int
    checkpoint: str
    env_steps: int
    train_seconds: float | None = None
    val_returns: list[float] = field(default_factory=list)
    default_expert_returns: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SelectionRun:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ObjectiveSummary:
    """One objective's validation returns over its seeds, and its paired lead over the
    reference (the first candidate)."""

    val_return: Interval
    minus_reference: Interval
    default_expert: Interval
    env_steps: float

    def to_json(self, reference: str) -> dict[str, Any]:
        return {
            "val_return": self.val_return.to_json(),
            f"minus_{reference}": self.minus_reference.to_json(),
            "default_expert": self.default_expert.to_json(),
            "env_steps": self.env_steps,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], reference: str) -> ObjectiveSummary:
        return cls(
            val_return=Interval.from_json(data["val_return"]),
            minus_reference=Interval.from_json(data[f"minus_{reference}"]),
            default_expert=Interval.from_json(data["default_expert"]),
            env_steps=float(data["env_steps"]),
        )


@dataclass
class SelectionResult:
    """``results.json`` of ``meta-rl select-objective``."""

    family: str
    split: str
    split_seed: int
    seeds: int
    val_tasks: list[dict[str, float]]
    episodes: int
    budget: str
    summary: dict[str, ObjectiveSummary]
    """By objective, the reference (the first candidate) first."""
    chosen: str
    runs: list[SelectionRun]
    table: str = ""
    report: str = ""

    @property
    def reference(self) -> str:
        return next(iter(self.summary))

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["summary"] = {k: v.to_json(self.reference) for k, v in self.summary.items()}
        out["runs"] = [r.to_json() for r in self.runs]
        if not self.report:
            out.pop("report")
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SelectionResult:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        reference = next(iter(data["summary"]))
        kwargs["summary"] = {
            k: ObjectiveSummary.from_json(v, reference) for k, v in data["summary"].items()
        }
        kwargs["runs"] = [SelectionRun.from_json(r) for r in data["runs"]]
        return cls(**kwargs)
