"""The package's shape: what importing it costs, and where the trainer keeps its state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import meta_rl


def test_importing_meta_rl_loads_no_training_benchmark_or_plotting_module():
    code = (
        "import sys, meta_rl; "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'stable_baselines3', 'matplotlib', 'ray') or "
        "m.startswith(('meta_rl.benchmarks', 'meta_rl.training', 'meta_rl.objectives'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_the_trainer_keeps_its_state_on_objects_not_in_closures():
    package = Path(meta_rl.__file__).parent
    for path in [*package.glob("training/*.py"), *package.glob("objectives/*.py")]:
        assert "nonlocal" not in path.read_text(), path
