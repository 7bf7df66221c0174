"""PNG plots (matplotlib, headless). Needs the ``plots`` extra."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from meta_rl.errors import DependencyError
from meta_rl.infra.files import atomic_open

Curve = Sequence[tuple[int, float]]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise DependencyError("plots need matplotlib: pip install 'meta-rl[plots]'") from err
    return plt


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure as PNG, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    with atomic_open(path, "wb") as fh:
        fh.write(buffer.getvalue())
    return path


def adaptation_plot(
    panels: Sequence[Mapping[str, object]],
    path: Path,
    *,
    title: str,
) -> Path:
    """One panel per task: return against fine-tune env steps, with reference lines.

    Args:
        panels: Per task: ``"title"`` (str), ``"curves"`` (name to list of (steps, return)),
            ``"lines"`` (name to a constant return, drawn dashed).
        path: PNG file to write.
        title: Figure title.
    """
    plt = _pyplot()
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.6), squeeze=False, constrained_layout=True)
    for ax, panel in zip(axes[0], panels, strict=True):
        for name, curve in dict(panel["curves"]).items():  # type: ignore[arg-type]
            xs, ys = zip(*curve, strict=True)
            ax.plot(xs, ys, marker="o", label=name)
        for i, (name, value) in enumerate(dict(panel["lines"]).items()):  # type: ignore[arg-type]
            ax.axhline(value, linestyle="--", color=f"C{i + 3}", label=name)
        ax.set_title(str(panel["title"]), fontsize=9)
        ax.set_xlabel("fine-tune env steps")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
    return path


def score_curves_plot(
    summary: Mapping[str, Mapping[str, object]], path: Path, *, title: str
) -> Path:
    """Normalised score against env steps on held-out tasks, one panel per split kind.

    Curves (mapping, default expert, PPO from scratch) are drawn with their confidence
    band; each context-conditioned policy (PPO, SAC) is a band at its zero-shot score, MAML
    two points (before and after its inner step) with error bars.

    Args:
        summary: Per split kind, what :mod:`meta_rl.benchmarks.benchmark` summarises:
            curves as lists of ``{"steps", "mean", "low", "high"}``, and optional ``"context"``,
            ``"context_sac"``, ``"maml_before"``, ``"maml_after"`` stats.
        path: PNG file to write.
        title: Figure title.
    """
    plt = _pyplot()
    n = len(summary)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.0), squeeze=False, constrained_layout=True)
    for ax, (split, s) in zip(axes[0], summary.items(), strict=True):
        for i, (key, name) in enumerate(
            (
                ("mapping", "mapping + fine-tune"),
                ("default_expert", "default expert + fine-tune"),
                ("ppo_scratch", "PPO from scratch"),
            )
        ):
            points = [p for p in s[key] if p["mean"] is not None]  # type: ignore[index,union-attr]
            if not points:
                continue
            xs = [max(p["steps"], 100) for p in points]  # a log axis: step 0 drawn at 100
            ax.plot(xs, [p["mean"] for p in points], marker="o", color=f"C{i}", label=name)
            ax.fill_between(
                xs,
                [p["low"] for p in points],
                [p["high"] for p in points],
                color=f"C{i}",
                alpha=0.2,
            )
        for key, color, name in (
            ("context", "C3", "context-conditioned PPO"),
            ("context_sac", "C5", "context-conditioned SAC"),
        ):
            context = s.get(key)  # type: ignore[union-attr]
            if context and context["mean"] is not None:
                ax.axhline(context["mean"], color=color, linestyle="--", label=name)
                ax.axhspan(context["low"], context["high"], color=color, alpha=0.1)
        for key, marker, name in (
            ("maml_before", "s", "MAML"),
            ("maml_after", "D", "MAML + 1 step"),
        ):
            stat = s.get(key)  # type: ignore[union-attr]
            if stat and stat["mean"] is not None:
                x = max(stat.get("adapt_steps", 0), 100)
                err = [[stat["mean"] - stat["low"]], [stat["high"] - stat["mean"]]]
                ax.errorbar([x], [stat["mean"]], yerr=err, fmt=marker, color="C4", label=name)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":", label="oracle")
        ax.set_xscale("log")
        ax.set_title(f"{split} split", fontsize=10)
        ax.set_xlabel("env steps on the task (0 drawn at 100)")
        ax.set_ylabel("normalised score")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
    return path


def descriptor_plot(
    points: Mapping[str, Sequence[tuple[Mapping[str, float], float | None]]],
    task_space,
    path: Path,
    *,
    title: str,
    hollow: Sequence[str] = (),
) -> Path:
    """Score of each held-out task against each of its features.

    Args:
        points: Per series label, ``(task, score)`` pairs (``None`` scores are skipped).
        task_space: The family's ``TaskSpace`` (feature names, bounds, units).
        path: PNG file to write.
        title: Figure title.
        hollow: Labels drawn as hollow markers (references, such as the default expert).
    """
    plt = _pyplot()
    features = task_space.features
    fig, axes = plt.subplots(
        1, len(features), figsize=(3.6 * len(features), 3.4), squeeze=False, constrained_layout=True
    )
    for ax, feature in zip(axes[0], features, strict=True):
        for i, (label, pairs) in enumerate(points.items()):
            kept = [(t[feature.name], v) for t, v in pairs if v is not None]
            if kept:
                xs, ys = zip(*kept, strict=True)
                style = (
                    {"facecolors": "none", "edgecolors": f"C{i}"}
                    if label in hollow
                    else {"color": f"C{i}"}
                )
                ax.scatter(xs, ys, s=20, alpha=0.85, label=label, **style)
        unit = f" ({feature.unit})" if feature.unit else ""
        ax.set_xlabel(f"{feature.name}{unit}")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("zero-shot normalised score")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
    return path


def finetune_selection_plot(result: Mapping[str, object], path: Path) -> Path:
    """``meta-rl select-finetune``'s curves: each candidate's mean return over the
    validation tasks against fine-tune env steps, the mean zero-shot return dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for candidate in result["candidates"]:  # type: ignore[attr-defined]
        xs, ys = zip(*candidate["mean"], strict=True)
        ax.plot(xs, ys, marker="o", label=candidate["name"])
    zero = sum(result["zero_shot"]) / len(result["zero_shot"])  # type: ignore[arg-type]
    ax.axhline(zero, linestyle="--", color="grey", label="zero-shot")
    ax.set_xlabel("fine-tune env steps (warm start included)")
    ax.set_ylabel("mean return, validation tasks")
    ax.set_title(f"{result['family']}: fine-tunes from the prediction", fontsize=10)
    ax.legend(fontsize=8)
    path = save_figure(fig, path)
    plt.close(fig)
    return path


def finetune_curves_plot(
    summary: Mapping[str, Mapping[str, object]], path: Path, *, title: str
) -> Path:
    """Every fine-tune's pooled normalised score against env steps (warm starts
    included), one panel per split kind: from the prediction (solid), from the
    default-task expert (dashed) and from scratch (dotted), with confidence bands."""
    plt = _pyplot()
    n = len(summary)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.2), squeeze=False, constrained_layout=True)
    styles = {"prediction": "-", "expert": "--", "scratch": ":"}
    for ax, (split, s) in zip(axes[0], summary.items(), strict=True):
        curves = s.get("finetunes") or {}  # type: ignore[union-attr]
        for i, (key, curve) in enumerate(curves.items()):  # type: ignore[union-attr]
            points = [p for p in curve if p["mean"] is not None]
            if not points:
                continue
            xs = [max(p["steps"], 100) for p in points]  # a log axis: step 0 drawn at 100
            style = styles.get(key.split(":")[0], "-")
            ax.plot(xs, [p["mean"] for p in points], style, marker="o", color=f"C{i}", label=key)
            ax.fill_between(
                xs,
                [p["low"] for p in points],
                [p["high"] for p in points],
                color=f"C{i}",
                alpha=0.12,
            )
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("env steps (step 0 drawn at 100)")
        ax.set_ylabel("normalised score (1: oracle)")
        ax.set_title(f"{title}, {split} split", fontsize=10)
        ax.legend(fontsize=7)
    path = save_figure(fig, path)
    plt.close(fig)
    return path
