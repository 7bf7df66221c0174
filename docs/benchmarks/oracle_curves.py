"""Plot the learning curves of a benchmark folder's oracle runs: the return of each test
task's run from scratch at each evaluated point, one panel per split, so that one can see
whether the oracles have flattened. Run from the repository root, for example:

    python docs/benchmarks/oracle_curves.py docs/benchmarks/lunarlander-td3

It reads ``<folder>/<split>-oracles.json`` (as ``meta-rl benchmark`` and
``halfcheetahvel-oracle/sac_oracles.py`` write them) and writes
``<folder>/oracle_curves.png``.
"""

import argparse
import json
from pathlib import Path

from meta_rl.benchmarks.plots import _pyplot, save_figure

SPLITS = ("interpolation", "extrapolation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    files = [(s, args.folder / f"{s}-oracles.json") for s in SPLITS]
    files = [(s, f) for s, f in files if f.exists()]
    if not files:
        raise SystemExit(f"no <split>-oracles.json in {args.folder}")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(files), figsize=(5.5 * len(files), 4), squeeze=False)
    for ax, (split, path) in zip(axes[0], files, strict=True):
        runs = json.loads(path.read_text()).values()
        colours: dict[str, str] = {}  # one colour per task, for its PPO and SAC runs
        for run in (r for r in runs if r.get("curve")):
            task = json.dumps(run["task"], sort_keys=True)
            colour = colours.setdefault(task, f"C{len(colours) % 10}")
            steps, returns = zip(*run["curve"], strict=True)
            style = "-" if run["algo"] == "ppo" else "--"
            ax.plot(steps, returns, style, marker="o", ms=3, color=colour)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.set_title(f"{split}: one line per test task's run\n(solid: PPO, dashed: SAC)")
        ax.set_xlabel("env steps")
        ax.set_ylabel("mean return")
        ax.grid(alpha=0.3)
    out = save_figure(fig, args.folder / "oracle_curves.png")
    print(out)


if __name__ == "__main__":
    main()
