"""Every Python block of the README and the user guide runs, as a user would paste it.

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
