"""`rl` after `td3` on Pendulum: PPO through the mapping, started from each published `td3`
mapping (../selection), early-stopped on the same 6 validation tasks as `meta-rl train`,
then scored as `meta-rl select-objective` scores (the same 24 validation tasks and episode
seeds; test tasks untouched) and paired with the `td3` mapping it started from. Run from
the repository root, for example:

    python docs/benchmarks/pendulum-objectives/td3-rl/polish.py default '{}' --seeds 3

The question: does PPO sharpen `td3`'s control, which is less precise than `rl`'s on
light pendulums with strong motors (README)? Starting from the `td3` checkpoint is what a
`td3+rl` objective would do if its `rl` phase began from the best `td3` round. SETTINGS
are `RLConfig` fields; `gamma` and `gae_lambda` among them override the recipe's, as in
`meta-rl train`. The comparison is written to NAME.json and NAME.md beside this script,
with each seed's seconds. `rl_env_steps` there counts the rollouts only; `meta-rl train`
would add the early-stopping episodes (6 tasks x 5 episodes x 200 steps a scoring).
"""

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meta_rl.benchmarks.results import bootstrap_ci
from meta_rl.evaluation import evaluate_params
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.objectives.on_policy import RLConfig, train_rl
from meta_rl.training.trainer import validation_score  # how `meta-rl train` scores its rounds

HERE = Path(__file__).parent
SELECTION = HERE.parent / "selection"


def polish(seed: int, settings: RLConfig, published: dict[str, Any]) -> dict[str, Any]:
    """One seed: `rl` from the published `td3` mapping, its history and validation returns."""
    started = time.time()
    run = next(r for r in published["runs"] if r["objective"] == "td3" and r["seed"] == seed)
    mapping = TrainedMapping.load(SELECTION / f"td3-seed{seed}" / Path(run["checkpoint"]).name)
    family, spec, network, recipe = mapping.family, mapping.spec, mapping.network, mapping.recipe
    space = family.task_space
    # The split the td3 mapping was trained on.
    split = space.split(
        recipe.n_train,
        recipe.n_test,
        n_val=recipe.n_val,
        kind=mapping.info["split_kind"],
        seed=mapping.info["split_seed"],
    )
    descriptors = torch.as_tensor(np.stack([space.to_descriptor(t) for t in split.train]))
    early = torch.as_tensor(np.stack([space.to_descriptor(t) for t in split.val]))
    episodes = max(1, recipe.eval_episodes // 2)

    def early_score() -> float:
        return validation_score(spec, network, family, split.val, early, episodes, seed + 7, [])

    start = early_score()
    if abs(start - mapping.info["val_return"]) > 1e-3:
        raise SystemExit(f"seed {seed}: the td3 mapping no longer scores its recorded return")
    best = {"score": start, "iteration": 0, "state": copy.deepcopy(network.state_dict())}
    history = [{"iteration": 0, "val_return": start}]

    def on_iteration(iteration: int, steps: int, _stats: dict[str, Any]) -> None:
        if iteration % settings.eval_every and iteration != settings.iterations:
            return
        score = early_score()
        history.append({"iteration": iteration, "val_return": score, "rl_env_steps": steps})
        if score >= best["score"]:  # ties to the later round, as `meta-rl train`
            best.update(score=score, iteration=iteration, state=copy.deepcopy(network.state_dict()))

    steps = train_rl(
        spec,
        network,
        family,
        split.train,
        descriptors,
        settings,
        gamma=float(recipe.ppo.get("gamma", 0.99)),
        gae_lambda=float(recipe.ppo.get("gae_lambda", 0.95)),
        seed=seed + 3,
        on_iteration=on_iteration,
    )
    network.load_state_dict(best["state"])
    returns = [
        evaluate_params(
            spec,
            mapping.predict(t),
            family,
            t,
            episodes=published["episodes"],
            seed=10_000 + i * 100,
        )
        for i, t in enumerate(published["val_tasks"])
    ]
    return {
        "seed": seed,
        "selected_iteration": best["iteration"],
        "rl_env_steps": steps,
        "history": history,
        "td3_plus_rl": float(np.mean(returns)),
        "td3": float(np.mean(run["val_returns"])),
        "returns": returns,
        "td3_returns": run["val_returns"],
        "seconds": round(time.time() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("settings", help="RLConfig fields as JSON, e.g. '{\"lr\": 3e-5}'")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.seeds <= 3:
        parser.error("--seeds must be 1 to 3: the published td3 mappings have seeds 0 to 2")
    settings = RLConfig(**json.loads(args.settings))
    torch.set_num_threads(1)  # as `meta-rl` trains: the same float sums, the same numbers
    published = json.loads((SELECTION / "results.json").read_text())
    seeds = [polish(seed, settings, published) for seed in range(args.seeds)]
    paired = bootstrap_ci(
        [(np.array(s["returns"]) - np.array(s["td3_returns"])).tolist() for s in seeds]
    )
    overall = bootstrap_ci([s["returns"] for s in seeds])
    report = {
        "settings": json.loads(args.settings),
        "td3_plus_rl": overall.to_json(),
        "minus_td3": paired.to_json(),
    }
    report["seeds"] = seeds
    (HERE / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"`rl` ({args.settings}) from the published `td3` mappings on Pendulum, "
        f"{args.seeds} seed(s), {len(published['val_tasks'])} validation tasks x "
        f"{published['episodes']} episodes:",
        "",
        "| seed | iteration kept | `td3+rl` | `td3` | worst task (`td3+rl` / `td3`) |",
        "|---|---|---|---|---|",
        *(
            f"| {s['seed']} | {s['selected_iteration']} | {s['td3_plus_rl']:.1f} | "
            f"{s['td3']:.1f} | {min(s['returns']):.0f} / {min(s['td3_returns']):.0f} |"
            for s in seeds
        ),
        "",
        f"`td3+rl`: {overall.format(digits=1)}; "
        f"minus `td3`, paired: {paired.format(digits=1, sign=True)}",
    ]
    (HERE / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
