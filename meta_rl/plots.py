"""PNG plots (matplotlib, headless). Needs the ``plots`` extra."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from meta_rl.io import atomic_open

Curve = Sequence[tuple[int, float]]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ValueError("plots need matplotlib: pip install 'meta-rl[plots]'") from err
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
