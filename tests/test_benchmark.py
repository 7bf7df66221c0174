"""The benchmark protocol: the score, its intervals, and a whole suite at a tiny budget."""

from __future__ import annotations

import json
import math
import runpy
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from meta_rl.benchmarks.benchmark import BenchmarkConfig, run_benchmark
from meta_rl.benchmarks.results import BenchmarkResult, Interval, SplitSummary, bootstrap_ci
from meta_rl.benchmarks.score import (
    ScoreConfig,
    _candidates,
    budget_scale,
    evaluation_episodes,
    oracle_note,
    oracle_scale,
    oracles,
    sac_scale,
)
from meta_rl.cli import build_parser
from meta_rl.errors import ConfigError
from meta_rl.evaluation import normalised_score
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.mapping.policy import PolicyArch
from meta_rl.training.config import TrainConfig
from meta_rl.training.recipes import recipe_for

from .conftest import TINY_PIPELINE

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(
    ("value", "random", "oracle", "expected"),
    [
        (-1200.0, -1200.0, -150.0, 0.0),  # random play scores 0
        (-150.0, -1200.0, -150.0, 1.0),  # the oracle scores 1
        (-675.0, -1200.0, -150.0, 0.5),  # negative returns (Pendulum)
        (500.0, 20.0, 260.0, 2.0),  # beyond the oracle
        (10.0, 20.0, 220.0, -0.05),  # below random
    ],
)
def test_normalised_score_hand_made(value, random, oracle, expected):
    assert normalised_score(value, random, oracle) == pytest.approx(expected)


def test_normalised_score_undefined_when_oracle_is_not_above_random():
    with pytest.raises(ValueError, match="undefined"):
        normalised_score(1.0, 5.0, 5.0)


def test_bootstrap_ci():
    flat = bootstrap_ci([[0.5, 0.5], [0.5, None]])
    assert flat == Interval(mean=0.5, low=0.5, high=0.5, tasks=3, seeds=2)
    assert bootstrap_ci([[None], []]).mean is None
    agree = bootstrap_ci([[0.4, 0.6, 0.5], [0.5, 0.4, 0.6], [0.6, 0.5, 0.4]])
    disagree = bootstrap_ci([[0.1, 0.2, 0.15], [0.5, 0.4, 0.6], [0.9, 0.8, 0.85]])
    assert agree.low < agree.mean < agree.high
    assert disagree.high - disagree.low > 2 * (agree.high - agree.low)
    assert agree.format() == f"{agree.mean:.3f} [{agree.low:.3f}, {agree.high:.3f}]"
    assert Interval(None, None, None).format() == "undefined"
    assert bootstrap_ci([[0.1, 0.7], [0.3]]) == bootstrap_ci([[0.1, 0.7], [0.3]])  # seeded


def test_budget_names_and_fractions():
    assert budget_scale("full") == 1.0 and budget_scale("small") == 0.02
    assert budget_scale("0.25") == 0.25
    assert oracle_scale("0.25") == 1.0 and oracle_scale("small") == 0.02
    assert oracle_scale("0.25", oracle_budget="0.1") == 0.1
    assert oracle_scale("small", oracle_budget="full") == 1.0
    with pytest.raises(ValueError, match="budget must be"):
        BenchmarkConfig(family="Pendulum", oracle_budget="most")
    assert oracle_note("0.25", "0.25") == " (oracle at budget 0.25)"
    assert oracle_note("0.25", "full") == ""
    assert oracle_note("small", "small") == ""
    assert oracle_note("0.5", "full", "0.2") == " (oracle's SAC at budget 0.2)"
    assert oracle_note("0.5", "0.2", "0.2") == (" (oracle at budget 0.2)")
    for bad in ("huge", "0", "1.5", "nan", "-0.1"):
        with pytest.raises(ValueError, match="budget must be"):
            budget_scale(bad)


def test_reduced_budgets_keep_the_protocols_episodes(tmp_path):
    recipe = recipe_for("HalfCheetahVel")
    for budget, episodes in (("small", 3), ("0.1", 10), ("full", 10)):
        config = ScoreConfig(checkpoint="x", out_dir=tmp_path, budget=budget)
        assert evaluation_episodes(config, recipe) == episodes
    config = ScoreConfig(checkpoint="x", out_dir=tmp_path, budget="0.1", episodes=4)
    assert evaluation_episodes(config, recipe) == 4


def test_sac_budget_zero_leaves_sac_out():
    assert sac_scale("0") == sac_scale("0.00") == 0.0 and sac_scale("0.1") == 0.1
    with pytest.raises(ValueError, match="budget must be"):
        BenchmarkConfig(family="Pendulum", sac_budget="-1")
    recipe = recipe_for("LunarLanderContinuous")
    arch = PolicyArch(obs_dim=8, action_kind="box", action_dim=2)
    assert [c["algo"] for c in _candidates(recipe.scaled(0.1), arch)] == ["ppo", "sac"]
    without = recipe.scaled(0.1, sac_factor=0)
    assert [c["algo"] for c in _candidates(without, arch)] == ["ppo"]
    assert without.oracle_steps == recipe.scaled(0.1).oracle_steps
    note = oracle_note("0.2", "0.2", "0")
    assert note == " (oracle at budget 0.2) (oracle: PPO alone, SAC left out)"
    args = build_parser().parse_args(["benchmark", "LunarLanderContinuous", "--sac-budget", "0"])
    assert args.sac_budget == "0"


def test_suite_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown family"):
        BenchmarkConfig(family="Nope")
    with pytest.raises(ValueError, match="splits"):
        BenchmarkConfig(family="Pendulum", splits=("sideways",))
    with pytest.raises(ValueError, match="seeds"):
        BenchmarkConfig(family="Pendulum", seeds=0)
    with pytest.raises(ValueError, match="include 0"):
        BenchmarkConfig(family="Pendulum", finetune_steps=(5000, 10000))


def _png(path) -> tuple[int, ...]:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path).shape


def test_suite_runs_every_baseline_on_both_splits(tmp_path, monkeypatch, capsys):
    tiny = {"objective": "distill", **TINY_PIPELINE}
    config = BenchmarkConfig(
        family="Pendulum",
        budget="small",
        seeds=1,
        oracle_budget="0.01",  # the oracles' runs: half of small's, their curves as long
        sac_budget="0.005",
        out_dir=tmp_path / "out",
        workdir=tmp_path / "runs",
        workers=2,  # oracles and the two baselines in worker processes
        finetune_steps=(0, 128),
        episodes=1,
        train=tiny,
        baseline_steps=512,
        baselines=("context", "maml"),  # the recurrent baseline: the seeds test below
        progress=False,
    )
    result = run_benchmark(config)
    assert set(result.summary) == {"interpolation", "extrapolation"}
    for split, s in result.summary.items():
        for key in ("context", "maml_before", "maml_after", "inferred"):
            assert math.isfinite(getattr(s, key).mean), (split, key)
        # the "task inferred" column: each run's mapping got an encoder, probed 40 steps
        assert s.inferred_probe_steps == 40
        assert all(row.inferred_probe_steps == 40 for row in result.tasks[split])
        for key in ("mapping", "default_expert", "ppo_scratch"):
            assert all(math.isfinite(p.score.mean) for p in getattr(s, key)), (split, key)
        assert s.targets["20x_fewer_steps_than_ppo"]["tasks"] == 2
        assert "zero_shot_minus_context" in s.targets and "ahead_of_maml" in s.targets
        # the inner step's env steps differ per task; the summary gives their mean
        steps = [row.maml_adapt_steps for row in result.tasks[split]]
        assert s.maml_adapt_steps == round(sum(steps) / len(steps))
    # Extrapolation test tasks lie at the held-out upper edge of the first feature (m).
    heavy = [row.task["m"] for row in result.tasks["extrapolation"]]
    assert min(heavy) > 1.5
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    # The report reads back into the same typed result.
    assert BenchmarkResult.from_json(saved).summary == result.summary
    assert BenchmarkResult.from_json(saved).tasks == result.tasks
    assert (out / "results.md").read_text().startswith("Family Pendulum")
    assert "task inferred from a probe" in (out / "results.md").read_text()
    assert len(_png(out / "curves.png")) == 3
    assert len(_png(out / "zero_shot_by_descriptor.png")) == 3
    assert len(_png(out / "finetune.png")) == 3
    assert all(run.train_seconds is not None for run in result.runs)
    # The fine-tune curves: the default fine-tune and PPO from the prediction and from the
    # default-task expert, SAC and PPO from scratch (the oracle's runs), each with its
    # env steps to 0.9 and 0.95 of the oracle per task.
    s = result.summary["interpolation"]
    algo = TrainConfig(**{"family": "Pendulum", **tiny}).resolved_recipe().finetune_algo
    starts = [
        f"{start}:{a}" for a in dict.fromkeys((algo, "ppo")) for start in ("prediction", "expert")
    ]
    assert list(s.finetunes) == [*starts, "scratch:sac", "scratch:ppo"]
    assert set(s.steps_to_level) == {"0.9", "0.95"}
    assert all(len(v) == 2 for v in s.steps_to_level["0.9"].values())
    assert s.targets["finetune"]["curve"] == f"prediction:{algo}"
    row = result.tasks["interpolation"][0]
    assert row.finetunes[f"prediction:{algo}"] == row.fine_tune_curve  # the rows' own curve

    # A second run reuses the mappings, oracles and baselines, and gives the same numbers
    # (one split: the other's runs are the same code).
    again = run_benchmark(replace(config, splits=("interpolation",)))
    assert all(run.train_seconds is None for run in again.runs)
    assert again.summary["interpolation"] == result.summary["interpolation"]
    assert np.isfinite(again.summary["interpolation"].mapping[0].score.mean)

    # docs/benchmarks/rescore.py scores a run folder's other mapping file on its test tasks
    # with the benchmark's episode seeds: a copy of the scored one gives its very numbers.
    run_dir = out / "interpolation-seed0"
    (scored,) = run_dir.glob("mapping-*.safetensors")
    shutil.copy(scored, run_dir / "mapping-copy.safetensors")
    monkeypatch.setattr(sys, "argv", ["rescore.py", str(out), "interpolation"])
    capsys.readouterr()  # the benchmark's own output
    runpy.run_path(str(DOCS / "benchmarks" / "rescore.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    mapping = result.summary["interpolation"].mapping[0].score
    assert any(line.startswith(f"other mapping: {mapping.format()} (") for line in lines)
    assert "other minus scored mapping, paired: +0.000 [+0.000, +0.000]" in lines
    assert any(line.startswith("other mapping minus context policy, paired") for line in lines)


def test_suite_seeds_share_tasks_and_oracle_runs(monkeypatch, tmp_path):
    tiny = {"objective": "distill", **TINY_PIPELINE}
    config = BenchmarkConfig(
        family="Pendulum",
        budget="small",
        seeds=2,
        splits=("interpolation",),
        oracle_budget="0.01",  # below small's 0.02: the oracle's own budget reaches its runs
        sac_budget="0.005",  # and SAC's own, below that
        out_dir=tmp_path / "out",
        workdir=tmp_path / "runs",
        workers=0,
        finetune_steps=(0,),
        finetune_algos=("ppo",),  # the off-policy curves are the first suite test's
        episodes=1,
        baselines=("recurrent", "context-sac"),  # context and MAML: the first suite test's
        baseline_steps=256,
        train=tiny,
        progress=False,
    )
    result = run_benchmark(config)
    summary = result.summary["interpolation"]
    for name in ("recurrent", "context_sac"):
        assert math.isfinite(getattr(summary, name).mean), name
        assert getattr(summary, f"{name}_env_steps") == [256, 256], name
    again = SplitSummary.from_json(summary.to_json())
    assert again.context_sac == summary.context_sac
    assert again.context_sac_env_steps == summary.context_sac_env_steps
    assert "zero_shot_minus_context_sac" in summary.targets
    out = tmp_path / "out"
    # Each run's policy is cached; its resume file is gone once the cache holds it.
    assert len(list(out.glob("interpolation-seed*/context-sac-*.safetensors"))) == 2
    assert not list(out.rglob("*.resume.safetensors"))
    report = (out / "results.md").read_text()
    assert "recurrent PPO, task hidden" in report
    assert "| context-conditioned SAC (trained for 256 / 256) | 0 |" in report
    assert "mapping zero-shot minus context-conditioned SAC" in report
    by_seed = {0: [], 1: []}
    for row in result.tasks["interpolation"]:
        by_seed[row.seed].append((row.task, row.oracle))
    assert by_seed[0] == by_seed[1]  # same held-out tasks, one oracle run each
    oracle_runs = json.loads((tmp_path / "out" / "interpolation-oracles.json").read_text())
    assert len(oracle_runs) == 2 * 2  # two tasks, PPO and SAC
    sac_steps = {run["curve"][-1][0] for run in oracle_runs.values() if run["algo"] == "sac"}
    assert sac_steps == {100}  # Pendulum's 20k SAC steps times 0.005
    ppo_steps = {run["curve"][-1][0] for run in oracle_runs.values() if run["algo"] == "ppo"}
    assert all(3000 <= s < 3000 + 1024 * 4 for s in ppo_steps)  # 300k times 0.01, whole rollouts
    report = (tmp_path / "out" / "results.md").read_text()
    assert "(oracle at budget 0.01) (oracle's SAC at budget 0.005)" in report
    first, second = (TrainedMapping.load(run.checkpoint) for run in result.runs)
    assert first.info["split"] == second.info["split"]
    assert first.info["seed"] == 0 and second.info["seed"] == 1
    differ = [
        not torch.equal(a, b)
        for a, b in zip(
            first.network.state_dict().values(), second.network.state_dict().values(), strict=True
        )
    ]
    assert any(differ)  # the seeds train different mappings

    # A split's oracles run apart from its mappings share the benchmark's cache keys:
    # called without a mapping, nothing trains again and the oracles are the same.
    def no_training(*args):
        raise AssertionError("an oracle run was not found in the benchmark's cache")

    import meta_rl.benchmarks.score as score_module

    monkeypatch.setattr(score_module, "_oracle_job", no_training)
    recipe = recipe_for("Pendulum").scaled(
        oracle_scale("small", "0.01"), sac_factor=sac_scale("0.005")
    )
    apart = oracles(
        "Pendulum",
        first.arch,
        [task for task, _ in by_seed[0]],
        recipe,
        ScoreConfig(
            checkpoint="unused",
            budget="small",
            workers=0,
            progress=False,
            oracle_cache=tmp_path / "out" / "interpolation-oracles.json",
        ),
        episodes=1,
    )
    assert [row["oracle"] for row in apart] == [oracle for _, oracle in by_seed[0]]


def test_the_context_sac_baseline_trains_on_every_task_a_td3_mapping_drew(monkeypatch, tmp_path):
    import meta_rl.agents.baselines as baselines_module
    import meta_rl.benchmarks.score as benchmark_module

    mapping = TrainedMapping.load("pendulum")  # td3: it drew its tasks
    seen = []

    def capture(family, tasks, *args, **kwargs):
        seen.append(list(tasks))
        raise RuntimeError("captured")

    monkeypatch.setattr(baselines_module, "train_context_sac", capture)
    config = ScoreConfig(checkpoint="pendulum", out_dir=tmp_path, baseline_steps=256)
    with pytest.raises(RuntimeError, match="captured"):
        benchmark_module._context_sac(mapping, config)
    assert seen == [mapping.training_tasks] and len(seen[0]) == 256


def test_the_context_sac_baseline_refuses_discrete_actions(tmp_path):
    import meta_rl.benchmarks.score as benchmark_module

    config = ScoreConfig(
        checkpoint="cartpole", out_dir=tmp_path, baseline_steps=256, context_sac=True
    )
    with pytest.raises(ConfigError, match="context-sac baseline needs continuous actions"):
        benchmark_module._context_sac(TrainedMapping.load("cartpole"), config)
    # Before any oracle or mapping trains: nothing is written.
    with pytest.raises(ConfigError, match="CartPole has discrete ones"):
        benchmark_module.score_mapping(config)
    suite = BenchmarkConfig(
        family="CartPole", out_dir=tmp_path / "suite", baselines=("context-sac",)
    )
    with pytest.raises(ConfigError, match="CartPole has discrete ones"):
        run_benchmark(suite)
    assert list(tmp_path.iterdir()) == []
    # The command line offers it, and leaves it out unless named.
    parse = build_parser().parse_args
    assert "context-sac" not in parse(["benchmark", "Pendulum"]).baselines
    assert parse(["benchmark", "Pendulum", "--baselines", "context-sac"]).baselines == [
        "context-sac"
    ]


@pytest.mark.parametrize("baseline", ["context", "maml", "recurrent"])
def test_baselines_train_on_every_task_the_mapping_learned_from(monkeypatch, tmp_path, baseline):
    import meta_rl.agents.baselines as baselines_module
    import meta_rl.benchmarks.score as benchmark_module

    mapping = TrainedMapping.load("cartpole")
    recorded = {k: v for k, v in mapping.info.items() if not k.endswith("_tasks")}
    split_train = recorded["split"]["train"]
    space = mapping.task_space
    drawn = space.split(30, 0, seed=5).train  # an off-policy phase's longer list
    seen: list[list[dict[str, float]]] = []

    def capture(family, tasks, *args, **kwargs):
        seen.append(list(tasks))
        raise RuntimeError("captured")

    monkeypatch.setattr(baselines_module, "train_context_policy", capture)
    monkeypatch.setattr(baselines_module, "train_recurrent_policy", capture)
    monkeypatch.setattr(benchmark_module, "meta_train", capture)
    train_baseline = {
        "context": benchmark_module._context_policy,
        "maml": benchmark_module._maml_init,
        "recurrent": benchmark_module._recurrent_policy,
    }
    config = ScoreConfig(checkpoint="cartpole", out_dir=tmp_path, baseline_steps=256)
    for objective, info, expected in [
        ("rl", {}, split_train),
        ("sacd", {"sacd_tasks": drawn}, drawn),
        # a checkpoint from before the drawn tasks were recorded: the split's
        ("sacd", {}, split_train),
        # phases that used both (no shipped objective does): each task once, the split's first
        ("distill+sacd", {"sacd_tasks": split_train[:2] + drawn}, split_train + drawn),
    ]:
        mapping.objective, mapping.info = objective, {**recorded, **info}
        assert mapping.training_tasks == expected, objective
        with pytest.raises(RuntimeError, match="captured"):
            train_baseline[baseline](mapping, config)
        assert seen.pop() == expected
