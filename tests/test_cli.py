"""The meta-rl command line: output, JSON, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from meta_rl.cli import UsageError, main, parse_task
from meta_rl.envs import get_family


def test_families_lists_every_feature(capsys):
    assert main(["families"]) == 0
    out = capsys.readouterr().out
    assert "meta_rl/Pendulum-v0" in out and "max_torque" in out and "[0.5, 2]" in out


def test_families_json(capsys):
    assert main(["families", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["Pendulum"]["features"][0]["name"] == "m"
    assert data["CartPole"]["id"] == "meta_rl/CartPole-v0"


def test_rollout_json(capsys):
    assert main(["rollout", "Pendulum", "--task", "m=1.5,l=0.8", "--episodes", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["returns"]) == 2 and data["return_mean"] < 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["rollout", "Pendulum", "--task", "m=nan"], "'m'"),
        (["rollout", "Pendulum", "--task", "m=inf"], "'m'"),
        (["rollout", "Pendulum", "--task", "m=9"], "out of bounds"),
        (["rollout", "Pendulum", "--task", "mass=1"], "unknown task feature"),
        (["rollout", "Pendulum", "--task", "m=heavy"], "must be a number"),
        (["rollout", "Pendulum", "--task", "m"], "name=value"),
        (["rollout", "Pendulum", "--task", "m=1,m=2"], "twice"),
        (["rollout", "Nope"], "unknown family"),
        (["rollout", "Pendulum", "--episodes", "0"], "at least 1"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_parse_task_fills_defaults():
    family = get_family("Pendulum")
    assert parse_task("m=1.5", family) == {**family.task_space.default_task(), "m": 1.5}
    with pytest.raises(UsageError):
        parse_task("g=1e999", family)


def test_console_script_exit_status():
    proc = subprocess.run(
        [sys.executable, "-m", "meta_rl.cli", "rollout", "Pendulum", "--task", "g=99"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("meta-rl: error:") and "'g'" in proc.stderr
