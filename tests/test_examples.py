"""Every example runs, at tiny budgets, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(args: list[str], cwd: Path) -> str:
    # No display session, as on a server: rendering must not complain about it.
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "DISPLAY")}
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "XDG_RUNTIME_DIR" not in proc.stderr, proc.stderr[-2000:]
    return proc.stdout


def test_custom_family_example(tmp_path):
    out = _run([str(EXAMPLES / "custom_family.py")], tmp_path)
    assert "meta_rl/PoleCart-v0" in out


@pytest.mark.parametrize("name", ["quickstart.py", "in_your_project.py"])
def test_adaptation_examples(tiny_mapping, tmp_path, name):
    out = _run(
        [str(EXAMPLES / name), "--checkpoint", str(tiny_mapping[0]), "--steps", "200"], tmp_path
    )
    assert "zero-shot" in out and ("fine-tune" in out or "fine-tuned" in out)


def test_rollout_example(tiny_mapping, tmp_path):
    out = _run(
        [str(EXAMPLES / "rollout.py"), "--checkpoint", str(tiny_mapping[0]), "--gif", "x.gif"],
        tmp_path,
    )
    assert (tmp_path / "x.gif").exists() and "return" in out
