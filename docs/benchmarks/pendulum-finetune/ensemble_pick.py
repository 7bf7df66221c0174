"""Would three seeds' mappings, one picked per task by one episode each, avoid the single
tasks that one mapping fails?

For each task, the predictions of the three seeds' `td3` mappings (those
`validation_rounds.py` kept by the recipe's rule, `runs-val<k>/pendulum-seed<k>-first6`)
each play one deterministic episode from one shared start; the best is kept and scored
with 10 episodes, as the benchmark scores zero-shot. Printed beside it: each mapping's own
score and their mean (what three single-mapping runs score). On the 24 validation tasks
past early stopping's six (normalised by the random policy and the best of the three,
since validation tasks have no oracle) and on the 6 test tasks (normalised as the
benchmark, by the published random and oracle returns):

    python docs/benchmarks/pendulum-finetune/ensemble_pick.py [--finetune --workers 2]

With `--finetune`, the recipe's SAC fine-tune on each test task from the picked mapping
and, as the reference, from each seed's own mapping, with fine-tune seeds 0, 1 and 2 (the
benchmark's `finetune_job`; curves cached in `ensemble/cache.json`, ignored by git, so an
interrupted run resumes); the picked curves' steps include the three trial episodes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meta_rl.benchmarks.finetune import cached_jobs, finetune_job, zero_shot_job
from meta_rl.envs import get_family
from meta_rl.evaluation import ParamsPolicy, random_rollout, run_episodes
from meta_rl.mapping.checkpoint import TrainedMapping

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
PICK_SEED = 5000  # the shared start of the one-episode trials (not an evaluation's seed)
POINTS = (0, 1000, 2000, 5000)
TRIAL_STEPS = 200 * len(SEEDS)  # Pendulum's episodes are 200 steps


def one_episode(mapping: TrainedMapping, task: dict) -> float:
    env = mapping.family.make(task=task)
    try:
        policy = ParamsPolicy(mapping.spec, mapping.predict(task), env.action_space)
        return float(run_episodes(env, policy, episodes=1, seed=PICK_SEED)[0])
    finally:
        env.close()


def finetunes(paths: list[str], test: list[list[dict]], picks: list[int], workers: int) -> None:
    """Fine-tune curves from the picked mapping and from each seed's own, normalised."""
    jobs, wanted = [], []
    for t, rows in enumerate(zip(*test, strict=True)):
        for s in SEEDS:
            for kind, m in (("picked", picks[t]), ("own", s)):
                key = f"mapping{m}-task{t}-seed{s}"
                args = (paths[m], rows[0]["task"], "prediction", "sac", {}, POINTS, 10, s)
                if key not in [k for k, _, _ in jobs]:
                    jobs.append((key, finetune_job, args))
                wanted.append((kind, t, s, key))
    out = HERE / "ensemble"
    out.mkdir(exist_ok=True)
    results = dict(
        zip([k for k, _, _ in jobs], cached_jobs(jobs, out / "cache.json", workers), strict=True)
    )
    table: dict[str, list[list[float]]] = {"picked": [], "own": []}
    for kind, t, s, key in wanted:
        row = test[s][t]
        curve = results[key]
        table[kind].append(
            [(r - row["random"]) / (row["oracle"] - row["random"]) for _, r in curve]
        )
        steps = [n + (TRIAL_STEPS if kind == "picked" else 0) for n, _ in curve]
        print(kind, f"task {t} seed {s}", np.round(table[kind][-1], 3).tolist(), steps)
    for kind, rows in table.items():
        mean = np.mean(rows, axis=0)
        print(f"{kind}: mean by point {np.round(mean, 3).tolist()}")
    (out / "finetune.json").write_text(json.dumps(table, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finetune", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    paths = [f"runs-val{s}/pendulum-seed{s}-first6.safetensors" for s in SEEDS]
    mappings = [TrainedMapping.load(p) for p in paths]
    family = get_family("Pendulum")
    val = json.loads((HERE / "validation-rounds" / "seed0.json").read_text())["tasks"][6:30]
    # Random returns are per seed (the benchmark's random episodes use the run's seed).
    test = [
        json.loads((HERE / "seeds" / f"interpolation-seed{s}" / "results.json").read_text())["rows"]
        for s in SEEDS
    ]
    sets = {
        "validation": [(t, None) for t in val],
        "test": [(rows[0]["task"], rows) for rows in zip(*test, strict=True)],
    }
    for name, tasks in sets.items():
        own, picked, choices = [], [], []
        for task, rows in tasks:
            trials = [one_episode(m, task) for m in mappings]
            best = int(np.argmax(trials))
            choices.append(best)
            # Each seed's own score uses its seed's evaluation episodes, as the benchmark.
            returns = [zero_shot_job(p, task, 10, s) for p, s in zip(paths, SEEDS, strict=True)]
            if rows is None:
                low = random_rollout(family, task, episodes=10, seed=1)["return_mean"]
                scores = [(r - low) / (max(returns) - low) for r in returns]
            else:
                scores = [
                    (r - row["random"]) / (row["oracle"] - row["random"])
                    for r, row in zip(returns, rows, strict=True)
                ]
            own.append(scores)
            picked.append(scores[best])
        own_arr = np.asarray(own)
        print(
            f"{name}: each seed's own {np.round(own_arr.mean(axis=0), 3)} (mean "
            f"{own_arr.mean():.3f}); picked by one episode each {np.mean(picked):.3f}; "
            f"the best of three per task {own_arr.max(axis=1).mean():.3f}"
        )
        if name == "test":
            print("  per task own:", np.round(own_arr, 3).tolist())
            print("  per task picked:", np.round(picked, 3).tolist(), "mappings", choices)
            if args.finetune:
                finetunes(paths, test, choices, args.workers)


if __name__ == "__main__":
    main()
