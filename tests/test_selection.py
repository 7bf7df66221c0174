"""Choosing the objective on validation tasks: tiny budgets, real training and scoring."""

from __future__ import annotations

import json

import pytest

from meta_rl.benchmarks.results import SelectionResult
from meta_rl.benchmarks.selection import SelectionConfig, run_selection
from meta_rl.objectives.on_policy import RLConfig

from .conftest import TINY_PIPELINE

TINY = {
    **TINY_PIPELINE,
    "rl": RLConfig(iterations=2, tasks_per_iteration=3, n_steps=32, minibatches=2),
}


def test_selection_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown objective"):
        SelectionConfig(family="Pendulum", objectives=("nope",))
    with pytest.raises(ValueError, match="repeat"):
        SelectionConfig(family="Pendulum", objectives=("rl", "rl"))
    with pytest.raises(ValueError, match="val_tasks"):
        SelectionConfig(family="Pendulum", val_tasks=0)


def test_selection_scores_every_objective_on_validation_tasks_only(tmp_path):
    config = SelectionConfig(
        family="Pendulum",
        objectives=("distill", "rl"),
        seeds=2,
        val_tasks=7,
        episodes=1,
        budget="small",
        out_dir=tmp_path / "out",
        workdir=tmp_path / "runs",
        workers=0,
        train=TINY,
        progress=False,
    )
    result = run_selection(config)
    assert len(result.runs) == 4 and len(result.val_tasks) == 7
    first = json.loads((tmp_path / "out" / "results.json").read_text())
    # The validation tasks are the split's: none is a training or a test task.
    from meta_rl.mapping.checkpoint import TrainedMapping

    # Validation tasks beyond early stopping's: none was used for training, for picking a
    # checkpoint, or is a test task.
    split = TrainedMapping.load(result.runs[0].checkpoint).info["split"]
    seen = {json.dumps(t, sort_keys=True) for t in split["train"] + split["val"] + split["test"]}
    assert not {json.dumps(t, sort_keys=True) for t in result.val_tasks} & seen
    assert first["summary"]["distill"]["minus_distill"]["mean"] == 0.0  # paired with itself
    means = {o: s.val_return.mean for o, s in result.summary.items()}
    assert result.chosen == max(means, key=means.get)
    assert SelectionResult.from_json(first).summary == result.summary
    assert (tmp_path / "out" / "results.md").read_text().startswith("Family Pendulum")
    # A rerun reuses the mappings and gives the same numbers.
    again = run_selection(config)
    assert all(run.train_seconds is None for run in again.runs)
    assert again.summary == result.summary
