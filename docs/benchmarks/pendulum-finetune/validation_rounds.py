"""Does early stopping on more validation tasks keep a better Pendulum mapping?

Trains the benchmark's `td3` mapping of one seed (the interpolation split, the recipe's
settings, so its default pick is the benchmark's own mapping) and, at every validation
round, scores the network on 60 validation tasks of the split's validation stream: the
first 6 are the ones early stopping uses (the recipe's `n_val`), the next 24 a larger
selection set, the last 30 a check set that no rule selects on. Writes, per seed, the
per-task returns of every round and the round each rule picks, and saves each picked
network (with its critic) as a checkpoint:

    python docs/benchmarks/pendulum-finetune/validation_rounds.py --seed 1 --workdir runs-val1

(seeds 0, 1 and 2 in `runs-val0`, `runs-val1`, `runs-val2`: 458 to 476 s each here); then
`validation_picks.py` scores the picks on the test tasks.

Rules: `first6` (the recipe's: mean return on tasks 0-5), `first30` (tasks 0-29). The
check set (tasks 30-59) says which rule picks the better network on tasks neither saw.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from meta_rl.benchmarks.benchmark import BenchmarkConfig
from meta_rl.evaluation import evaluate_params
from meta_rl.training.trainer import Trainer

HERE = Path(__file__).resolve().parent / "validation-rounds"
N_TASKS = 60
RULES = {"first6": range(0, 6), "first30": range(0, 30)}
CHECK = range(30, 60)


class RecordingTrainer(Trainer):
    """The recipe's trainer (its own validation, its pick), recording every round's
    per-task returns on :data:`N_TASKS` validation tasks and a copy of every round's
    network and critic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returns: list[list[float]] = []
        self.snapshots: list[tuple[dict, Any]] = []

    def validation_score(self) -> float:
        score = super().validation_score()
        if not self.returns:  # the first round: draw the wider validation set once
            split = self.family.task_space.split(
                self.recipe.n_train,
                self.recipe.n_test,
                n_val=N_TASKS,
                kind=self.config.split,
                seed=self.config.task_split_seed,
            )
            assert split.val[: len(self.tasks.val)] == self.tasks.val
            self.wide = split.val
        import torch

        with torch.no_grad():
            descriptors = torch.as_tensor(
                np.stack([self.family.task_space.to_descriptor(t) for t in self.wide])
            )
            params = self.network(descriptors)
        episodes = max(1, self.recipe.eval_episodes // 2)
        returns = [
            evaluate_params(
                self.spec, params[i], self.family, t, episodes=episodes, seed=self.config.seed + 7
            )
            for i, t in enumerate(self.wide)
        ]
        # The recipe's score is the mean of the first tasks' returns, the same episodes.
        assert abs(np.mean(returns[: len(self.tasks.val)]) - score) < 1e-6, (score, returns[:6])
        self.returns.append(returns)
        return score

    def _start(self):  # type: ignore[no-untyped-def]
        out = super()._start()
        self.snapshots.append((copy.deepcopy(self.network.state_dict()), None))
        return out

    def _validate(self, phase, stats):  # type: ignore[no-untyped-def]
        score = super()._validate(phase, stats)
        self.snapshots.append((copy.deepcopy(self.network.state_dict()), phase.critic()))
        return score


def pick(returns: np.ndarray, tasks: range) -> int:
    """The round of the highest mean return on ``tasks``; a tie goes to the later round,
    as the trainer's does."""
    means = returns[:, list(tasks)].mean(axis=1)
    return int(max(range(len(means)), key=lambda r: (means[r], r)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    config = BenchmarkConfig(
        family="Pendulum",
        splits=("interpolation",),
        workdir=args.workdir,
        train={"objective": "td3"},
        progress=False,
    )
    train_config = config.train_config("interpolation", args.seed)
    started = time.time()
    trainer = RecordingTrainer(train_config)
    trained, _ = trainer.run()
    seconds = time.time() - started
    returns = np.asarray(trainer.returns)
    rounds = [h["round"] for h in trainer.history if "val_return" in h]
    assert len(rounds) == len(returns) == len(trainer.snapshots)
    picks = {name: pick(returns, tasks) for name, tasks in RULES.items()}
    assert picks["first6"] == trainer.best.round, (picks, trainer.best.round)
    HERE.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "tasks": trainer.wide,
        "returns": returns.tolist(),
        "picks": picks,
        "check_means": {name: float(returns[r, list(CHECK)].mean()) for name, r in picks.items()},
        "round_check_means": returns[:, list(CHECK)].mean(axis=1).tolist(),
    }
    for name, round_ in picks.items():
        state, critic = trainer.snapshots[round_]
        trained.network.load_state_dict(state)
        trained.critic = critic
        trained.info = {**trained.info, "selected_round": round_, "selection_rule": name}
        trained.save(args.workdir / f"pendulum-seed{args.seed}-{name}.safetensors")
    (HERE / f"seed{args.seed}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("seed", "seconds", "picks", "check_means")}, indent=1))


if __name__ == "__main__":
    main()
