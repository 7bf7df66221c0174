"""The meta-rl command line: output, JSON, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from meta_rl.cli import UsageError, main, parse_task
from meta_rl.envs import get_family
from meta_rl.mapping.checkpoint import TrainedMapping


def test_families_lists_every_feature(capsys):
    assert main(["families"]) == 0
    out = capsys.readouterr().out
    assert "meta_rl/Pendulum-v0" in out and "max_torque" in out and "[0.5, 2]" in out


def test_families_json(capsys):
    assert main(["families", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["Pendulum"]["features"][0]["name"] == "m"
    assert data["CartPole"]["id"] == "meta_rl/CartPole-v0"


BAD_TASKS = [
    ("m=nan", "'m'"),
    ("m=inf", "'m'"),
    ("m=9", "out of bounds"),
    ("mass=1", "unknown task feature"),
    ("m=heavy", "must be a number"),
    ("m", "name=value"),
    ("m=1,m=2", "twice"),
]


@pytest.mark.parametrize("command", ["evaluate", "adapt", "rollout"])
@pytest.mark.parametrize(("task", "needle"), BAD_TASKS, ids=[t for t, _ in BAD_TASKS])
def test_bad_task_exits_2_with_one_line(capsys, tiny_mapping, command, task, needle):
    assert main([command, str(tiny_mapping[0]), "--task", task]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["evaluate", "no-such-mapping"], "no checkpoint file"),
        (["evaluate", "pendulum", "--episodes", "0"], "at least 1"),
        (["train", "Nope"], "unknown family"),
        (["train", "Pendulum", "--budget-scale", "-1"], "positive"),
        (["train", "Pendulum", "--objective", "magic"], "unknown objective"),
        (["train", "Pendulum", "--objective", "td3", "--td3-tasks", "1"], "at least 2"),
        (["train", "Pendulum", "--objective", "rl", "--td3-tasks", "1"], "--td3-tasks"),
        (["train", "CartPole", "--objective", "td3", "--budget-scale", "0.001"], "Box"),
        (["train", "Pendulum", "--objective", "sacd", "--budget-scale", "0.001"], "discrete"),
        (["train", "CartPole", "--objective", "sacd", "--sacd-tasks", "1"], "--sacd-tasks"),
        (["train", "CartPole", "--objective", "sacd", "--sacd-iterations", "0"], "at least 1"),
        (["benchmark", "pendulum", "--budget", "huge"], "budget must be"),
        (["benchmark", "pendulum", "--splits", "sideways"], "invalid choice"),
        (["benchmark", "Pendulum", "--seeds", "0"], "at least 1"),
        (["benchmark", "CartPole", "--checkpoint", "pendulum"], "CartPole"),
        (["select-objective", "Pendulum", "--val-tasks", "0"], "at least 1"),
        (["select-objective", "Pendulum", "--objectives", "rl", "rl"], "must not repeat"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_debug_shows_the_traceback_of_a_usage_error(capsys):
    assert main(["train", "Nope", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "FamilyError" in err
    assert err.splitlines()[-1].startswith("meta-rl: error: unknown family")


def test_an_internal_error_is_a_traceback_and_status_1_not_a_usage_error(capsys, monkeypatch):
    import meta_rl.cli as cli

    def broken(args):
        np.linalg.inv(np.zeros((2, 2)))  # a NumPy error deep inside a command, not bad input

    monkeypatch.setattr(cli, "cmd_families", broken)
    assert main(["families"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "LinAlgError" in err and "internal error" in err

    def bad_value(args):
        raise ValueError("an internal ValueError an hour into training")

    monkeypatch.setattr(cli, "cmd_families", bad_value)
    assert main(["families"]) == 1  # a plain ValueError is a bug, not a usage error
    assert "Traceback" in capsys.readouterr().err


def test_errors_are_one_hierarchy_and_still_value_errors():
    from meta_rl import errors
    from meta_rl.mapping.checkpoint import TrainedMapping

    for cls in (errors.TaskError, errors.FamilyError, errors.ConfigError, errors.CheckpointError):
        assert issubclass(cls, errors.MetaRLError) and issubclass(cls, ValueError)
    with pytest.raises(errors.CheckpointError):
        TrainedMapping.load("no-such-mapping")
    with pytest.raises(errors.FamilyError):
        get_family("Nope")
    with pytest.raises(errors.TaskError):
        get_family("Pendulum").task_space.validate({"m": -1.0})


def test_parse_task_fills_defaults():
    space = get_family("Pendulum").task_space
    assert parse_task("m=1.5", space) == {**space.default_task(), "m": 1.5}
    with pytest.raises(UsageError):
        parse_task("g=1e999", space)
    with pytest.warns(UserWarning, match="extrapolate"):
        assert parse_task("m=2.5", space, extrapolate=True)["m"] == 2.5


def test_console_script_exit_status(tiny_mapping):
    proc = subprocess.run(
        [sys.executable, "-m", "meta_rl.cli", "evaluate", str(tiny_mapping[0]), "--task", "g=99"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("meta-rl: error:") and "'g'" in proc.stderr


def test_evaluate_json(capsys, tiny_mapping):
    argv = ["evaluate", str(tiny_mapping[0]), "--task", "m=1.5,l=0.8", "--episodes", "2", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["returns"]) == 2 and data["return_mean"] < 0 and data["return_std"] >= 0
    assert data["task"]["m"] == 1.5


def test_evaluate_extrapolation_warns(capsys, tiny_mapping):
    argv = ["evaluate", str(tiny_mapping[0]), "--task", "m=2.5", "--episodes", "1", "--json"]
    assert main(argv) == 2
    with pytest.warns(UserWarning, match="outside the bounds"):
        assert main([*argv, "--extrapolate"]) == 0
    assert json.loads(capsys.readouterr().out)["task"]["m"] == 2.5


@pytest.mark.parametrize("algo", ["ppo", None])  # None: the family's, SAC for Pendulum
def test_adapt_saves_an_sb3_zip(capsys, tiny_mapping, tmp_path, algo):
    from stable_baselines3 import PPO, SAC

    out = tmp_path / "model.zip"
    argv = [
        "adapt",
        str(tiny_mapping[0]),
        "--task",
        "g=12",
        "--steps",
        "600",
        "--episodes",
        "1",
        "--out",
        str(out),
        "--json",
        *(["--algo", algo] if algo else []),
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"zero_shot_return", "fine_tuned_return"} <= set(data)
    chosen = algo or tiny_mapping[1].recipe.finetune_algo  # default: the family's choice
    assert data["algo"] == chosen
    model = (PPO if chosen == "ppo" else SAC).load(out, device="cpu")
    # Off-policy: the warm start's steps count in --steps; learn() takes the rest.
    warm = 0 if chosen == "ppo" else 400
    assert data["steps"] >= 600 and model.num_timesteps >= 600 - warm


def test_rollout_gif(capsys, tiny_mapping, tmp_path):
    gif = tmp_path / "episode.gif"
    argv = ["rollout", str(tiny_mapping[0]), "--task", "l=0.6", "--gif", str(gif), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert data["frames"] == 201 and len(data["returns"]) == 1


def test_demo_writes_table_and_png(capsys, tiny_mapping, tmp_path):
    argv = [
        "demo",
        "--checkpoint",
        str(tiny_mapping[0]),
        "--tasks",
        "1",
        "--steps",
        "128",
        "--workers",
        "0",
        "--out-dir",
        str(tmp_path),
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    row = data["rows"][0]
    assert {"default_expert", "zero_shot", "fine_tuned", "scratch"} <= set(row)
    assert row["fine_tune_curve"][0] == [0, row["zero_shot"]]  # the curve rises from zero-shot
    assert "deterministic episodes" in data["table"]
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| task |" in data["table"]


def test_benchmark_small(capsys, tiny_mapping, tmp_path):
    argv = [
        "benchmark",
        "Pendulum",
        "--checkpoint",
        str(tiny_mapping[0]),
        "--budget",
        "small",
        "--workers",
        "0",
        "--finetune-steps",
        "0",
        "128",
        "--out-dir",
        str(tmp_path),
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    zero_shot = data["summary"]["zero_shot"]
    assert zero_shot["mean"] is None or np.isfinite(zero_shot["mean"])
    assert all(np.isfinite(r["oracle"]) and np.isfinite(r["random"]) for r in data["rows"])
    assert (tmp_path / "adaptation.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "results.md").read_text().startswith("Family Pendulum")
    cached = json.loads((tmp_path / "oracles.json").read_text())
    assert sorted(v["algo"] for v in cached.values()) == sorted(["ppo", "sac"] * len(data["rows"]))
    for row in data["rows"]:
        assert row["oracle"] == max(row["oracle_ppo"], row["oracle_sac"])
        assert np.isfinite(row["context"])
        # The start, then the SAC warm start's point (400 env steps, past the 128 asked).
        assert [s for s, _ in row["default_fine_tune_curve"]] == [0, 400]
        assert set(row["steps_to_0.9"]) == {"mapping_fine_tune", "default_fine_tune", "ppo_scratch"}
    assert "context-conditioned PPO" in data["table"] and "MAML + one inner step" in data["table"]
    assert all(np.isfinite(r["maml_after"]) and r["maml_adapt_steps"] > 0 for r in data["rows"])
    assert list((tmp_path).glob("context-*.safetensors"))


def test_train_command_writes_checkpoint_and_log(capsys, tmp_path):
    out = tmp_path / "m.safetensors"
    argv = [
        "train",
        "Pendulum",
        "--objective",
        "distill",
        "--workdir",
        str(tmp_path),
        "--out",
        str(out),
        "--workers",
        "0",
        "--budget-scale",
        "0.001",
        "--n-train",
        "2",
        "--rounds",
        "1",
        "--steps-per-round",
        "3",
        "--states-per-task",
        "20",
        "--hidden",
        "8",
        "--rank",
        "4",
        "--keep-going",  # a base of 200 env steps is no better than random play
        "--seed",
        "1",
        "--split-seed",
        "0",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["checkpoint"] == str(out) and out.exists()
    info = TrainedMapping.load(out).info
    assert info["seed"] == 1 and info["split_seed"] == 0
    zero = get_family("Pendulum").task_space.split(2, 6, n_val=6, seed=0)
    assert info["split"]["test"] == zero.test  # the tasks of split seed 0, not of seed 1
    log = json.loads((tmp_path / "pendulum" / "train_log.json").read_text())
    assert len(log["experts"]) == 2 and "result" in log
    assert main(["evaluate", str(out), "--episodes", "1"]) == 0


def test_unwritable_output_is_refused_before_any_work(capsys, tiny_mapping):
    argv = ["adapt", str(tiny_mapping[0]), "--out", "/proc/no-such-dir/model.zip"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and err.count("\n") == 1
