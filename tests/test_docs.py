"""Every Python block of the README and the user guide runs, as a user would paste it;
every ``meta-rl`` line of their shell blocks parses, and the cheap ones run as written.

A page's blocks run in order, in one fresh process (later blocks use earlier blocks'
names), in an empty folder. Budgets shrink by :data:`SMALLER` (the same calls, fewer steps)
so that the suite stays short; nothing else is changed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

PREAMBLE = """\
from meta_rl.mapping.network import MappingConfig
from meta_rl.objectives.td3 import TD3Config

TINY = dict(
    budget_scale=0.002, n_train=3, rounds=1, steps_per_round=5, states_per_task=50,
    mapping=MappingConfig(hidden=(16,), rank=4), workers=0, progress=False,
    keep_going=True,
    td3=TD3Config(tasks=None, iterations=2, tasks_per_iteration=3, n_steps=20,
                  warmup_iterations=1, batch_tasks=2, batch_states=8, eval_every=1),
)
"""

SMALLER = [
    ('budget="quick"', 'budget="quick", **TINY'),
    ("5_000", "600"),
    ("5000", "600"),
    ("2000", "600"),
    ("tasks[:8], seed=0)).learn(10_000)", "tasks[:8], seed=0), n_steps=32).learn(256)"),
]
"""The budgets the tests shrink: (text in a block, what runs instead)."""


def blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def test_the_pages_have_python_blocks():
    assert sum(len(blocks(p)) for p in PAGES) >= 10


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_every_python_block_runs(page, tmp_path):
    code = "\n".join(blocks(page))
    for text, instead in SMALLER:
        code = code.replace(text, instead)
    script = PREAMBLE + code
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, f"{page.name}:\n{proc.stderr[-3000:]}"


SHELL_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
CHEAP = ("meta-rl evaluate pendulum", "meta-rl families")
"""Commands of the pages that the tests run as written (seconds each); every other
``meta-rl`` line is parsed by the command line's own parser (a rollout GIF is written by
``tests/test_cli.py`` and ``examples/rollout.py``'s test)."""


def shell_commands(page: Path) -> list[str]:
    """The command lines of a page's ``bash`` blocks, comments and env assignments off."""
    lines = []
    for block in SHELL_BLOCK.findall(page.read_text()):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            line = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", line)  # RAY_ADDRESS=... meta-rl ...
            if line:
                lines.append(line)
    return lines


def meta_rl_commands() -> list[tuple[str, str]]:
    return [
        (page.name, line)
        for page in PAGES
        for line in shell_commands(page)
        if line.startswith("meta-rl ")
    ]


def test_the_pages_have_meta_rl_commands():
    commands = {line.split()[1] for _, line in meta_rl_commands()}
    assert {"train", "evaluate", "adapt", "rollout", "benchmark"} <= commands


@pytest.mark.parametrize(
    ("page", "line"), meta_rl_commands(), ids=[f"{p}:{c}" for p, c in meta_rl_commands()]
)
def test_every_command_line_parses(page, line):
    """Each ``meta-rl`` line of the pages names a command and options that exist, with
    values they accept (a renamed option or a stale example fails here)."""
    import shlex

    from meta_rl.cli import build_parser

    args = build_parser().parse_args(shlex.split(line)[1:])
    assert callable(args.func)


CHEAP_LINES = sorted({c for _, c in meta_rl_commands() if c.startswith(CHEAP)})


def test_some_command_lines_are_cheap_enough_to_run():
    assert len(CHEAP_LINES) >= 2


@pytest.mark.parametrize("line", CHEAP_LINES)
def test_cheap_command_lines_run_as_written(line, tmp_path):
    import shlex

    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "DISPLAY")}
    exe = Path(sys.executable).with_name("meta-rl")
    proc = subprocess.run(
        [str(exe), *shlex.split(line)[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, f"{line}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip() or any(tmp_path.iterdir()), "the command printed and wrote nothing"
