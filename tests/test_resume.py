"""Nothing lost: a training run killed mid-way resumes to the result of an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from meta_rl.infra.files import load_tensors

TRAIN = [
    "Pendulum",
    "--keep-going",  # a base of 200 env steps is no better than random play
    "--objective",
    "distill",
    "--workers",
    "0",
    "--budget-scale",
    "0.001",
    "--n-train",
    "3",
    "--rounds",
    "4",
    "--steps-per-round",
    "5",
    "--states-per-task",
    "50",
    "--hidden",
    "16",
    "--rank",
    "4",
    "--json",
]


def _command(workdir, out, *extra: str) -> list[str]:
    """``meta-rl train`` of a tiny distill run."""
    where = ["--workdir", str(workdir), "--out", str(out)]
    return [sys.executable, "-m", "meta_rl.cli", "train", *TRAIN, *where, *extra]


def _paused(workdir, out, round_: int, *extra: str) -> subprocess.Popen:
    """Start the same run, pausing once it has saved round ``round_``; return then."""
    where = ["--workdir", str(workdir), "--out", str(out)]
    command = [sys.executable, "-m", "tests.pausing_train", str(round_), *TRAIN, *where, *extra]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if f"paused after round {round_}" in line:
            return proc
    proc.wait()
    raise AssertionError(f"the run ended (status {proc.returncode}) before round {round_}")


def test_killed_and_terminated_training_resumes_to_the_same_result(tmp_path):
    work = tmp_path / "runs"
    reference, resumed = tmp_path / "reference.safetensors", tmp_path / "resumed.safetensors"
    subprocess.run(_command(work, reference), check=True, capture_output=True)

    # Killed outright after round 1: no clean-up at all.
    proc = _paused(work, resumed, 1)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL and not resumed.exists()

    # Resumed, then stopped with SIGTERM after round 3: a one-line message, status 130.
    proc = _paused(work, resumed, 3, "--resume")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert "interrupted" in proc.stderr.read() and not resumed.exists()

    # Resumed to the end: the same mapping as the run that was never interrupted.
    subprocess.run(_command(work, resumed, "--resume"), check=True, capture_output=True)
    (want, want_meta), (got, got_meta) = load_tensors(reference), load_tensors(resumed)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert got_meta["info"]["history"] == want_meta["info"]["history"]
    assert got_meta["info"]["env_steps"] == want_meta["info"]["env_steps"]
    assert [h["round"] for h in got_meta["info"]["history"]] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("objective", "average_tau"),
    [
        ("rl", 0.0),
        ("td3", 0.0),
        # the same off-policy machinery again (about 30 s each): make test-slow
        pytest.param("sacd", 0.0, marks=pytest.mark.slow),
        pytest.param("td3", 0.05, marks=pytest.mark.slow),
    ],
)
def test_interrupted_iterative_phase_resumes_exactly(tmp_path, objective, average_tau):
    from meta_rl.mapping.network import MappingConfig
    from meta_rl.objectives.on_policy import RLConfig
    from meta_rl.objectives.sacd import SACDConfig
    from meta_rl.objectives.td3 import TD3Config
    from meta_rl.training.config import TrainConfig
    from meta_rl.training.trainer import train

    off_policy = {
        "iterations": 4,
        "tasks_per_iteration": 2,
        "n_steps": 32,
        "warmup_iterations": 1,
        "updates_per_step": 0.25,
        "batch_tasks": 2,
        "batch_states": 8,
        "eval_every": 1,
        "average_tau": average_tau,  # the checkpoint keeps the average, the state both
    }
    config = TrainConfig(
        family="Pendulum" if objective == "td3" else "CartPole",  # td3 needs Box actions
        objective=objective,
        workers=0,
        budget_scale=0.001,
        n_train=3,
        mapping=MappingConfig(hidden=(16,), rank=4),
        rl=RLConfig(iterations=4, tasks_per_iteration=2, n_steps=64, minibatches=2, eval_every=1),
        td3=TD3Config(**off_policy),
        sacd=SACDConfig(**off_policy),
        progress=False,
    )
    reference, _ = train(replace(config, workdir=tmp_path / "a"))

    def interrupt(round_: int) -> None:
        if round_ == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(replace(config, workdir=tmp_path / "b"), on_saved=interrupt)
    resumed, log = train(replace(config, workdir=tmp_path / "b", resume=True))
    for (name, a), b in zip(
        reference.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    if objective == "rl":
        assert reference.critic is None and resumed.critic is None
    else:  # the critic of the best round is kept, across the interruption too
        assert reference.critic is not None and resumed.critic is not None
        assert reference.critic.tensors.keys() == resumed.critic.tensors.keys()
        for name, a in reference.critic.tensors.items():
            assert torch.equal(a, resumed.critic.tensors[name]), name
    assert resumed.info["env_steps"] == reference.info["env_steps"]
    # The history too, with the phase's env steps counted across the interruption.
    assert resumed.info["history"] == reference.info["history"]
    steps = [h[f"{objective}_env_steps"] for h in resumed.info["history"][1:]]
    assert steps == [k * steps[0] for k in range(1, 5)] and steps[0] > 0
    assert [h["round"] for h in log["mapping_history"]] == [0, 1, 2, 3, 4]


def test_an_interrupt_stops_the_worker_pool_at_once():
    import multiprocessing
    import threading
    import time

    from meta_rl.cli import _terminate
    from meta_rl.infra.parallel import run_jobs

    previous = signal.signal(signal.SIGTERM, _terminate)
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            run_jobs(time.sleep, [(60,)] * 4, workers=2)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert time.monotonic() - started < 30  # not the 120 s the queued jobs would take
    # ... and the workers are gone, not left sleeping until this process exits.
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not multiprocessing.active_children()


def _finish_or_die(index: int) -> int:
    if index == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return index


def test_a_killed_worker_is_a_clear_error_and_finished_jobs_are_kept():
    from meta_rl.infra.parallel import WorkerDied, run_jobs

    kept: dict[int, int] = {}
    with pytest.raises(WorkerDied, match="worker process died"):
        run_jobs(
            _finish_or_die,
            [(0,), (1,), (2,), (3,)],
            workers=1,  # one worker: jobs 0 and 1 finish before job 2 kills it
            on_done=lambda i, r: kept.__setitem__(i, r),
        )
    assert kept == {0: 0, 1: 1}
