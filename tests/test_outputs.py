"""Outputs never clobber what the user did not name, and one run owns a work folder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from meta_rl.cli import main
from meta_rl.errors import BusyError, PathError
from meta_rl.infra.files import atomic_open, output_path, run_lock, write_text

from .test_resume import TRAIN


def _special_files(tmp_path):
    """A FIFO, and a character device where this process may make one (as root)."""
    fifo = tmp_path / "fifo.zip"
    os.mkfifo(fifo)
    found = [fifo]
    device = tmp_path / "null.zip"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
        found.append(device)
    except PermissionError:
        pass
    return found


def test_special_files_and_directories_are_refused_never_replaced(tmp_path):
    for special in _special_files(tmp_path):
        with pytest.raises(PathError, match="special file"), atomic_open(special, "w") as fh:
            fh.write("clobbered")
        assert not stat.S_ISREG(os.stat(special).st_mode)  # still the device or FIFO
    folder = tmp_path / "a-folder.safetensors"
    folder.mkdir()
    with pytest.raises(PathError, match="directory"):
        write_text(folder, "x")
    assert folder.is_dir()
    with pytest.raises(PathError, match="empty"):
        output_path("")


def test_a_symlink_is_followed_its_target_written_the_link_kept(tmp_path):
    target = tmp_path / "models" / "real.zip"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.zip"
    link.symlink_to(target)
    write_text(link, "new")
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text() == "new"
    assert not list(tmp_path.rglob(".*.tmp"))


def test_the_command_line_checks_every_output_before_any_work(capsys, tiny_mapping, tmp_path):
    checkpoint = str(tiny_mapping[0])
    fifo = _special_files(tmp_path)[0]
    cases = [
        (["adapt", checkpoint, "--out", ""], "must not be empty"),
        (["adapt", checkpoint, "--out", str(fifo), "--steps", "0"], "special file"),
        (["adapt", checkpoint, "--out", str(tmp_path)], "directory"),
        (["rollout", checkpoint, "--gif", "/proc/x.gif"], "cannot write /proc/x.gif"),
        (["rollout", checkpoint, "--gif", ""], "must not be empty"),
        (["train", "Pendulum", "--out", "", "--workdir", str(tmp_path)], "must not be empty"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and ".tmp" not in err, (argv, err)
    assert not (tmp_path / "pendulum").exists()  # refused before training began


def test_a_second_run_in_a_busy_work_folder_or_on_a_busy_checkpoint_fails_at_once(capsys, tmp_path):
    work, out = tmp_path / "runs", tmp_path / "first.safetensors"
    where = ["--workdir", str(work), "--out", str(out)]
    first = subprocess.Popen(
        [sys.executable, "-m", "tests.pausing_train", "1", *TRAIN, *where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stderr is not None
        for line in first.stderr:
            if "paused after round 1" in line:
                break
        # The first run holds work/pendulum: a second run there is refused, saying why.
        second = ["train", *TRAIN[:-1], "--workdir", str(work), "--out", str(tmp_path / "b")]
        assert main(second) == 2
        err = capsys.readouterr().err
        assert "runs/pendulum is in use by another meta-rl run" in err
        assert f"pid {first.pid}" in err
    finally:
        first.kill()
        first.wait()
    # Killed, it holds nothing: the lock goes with the process.
    with run_lock(work / "pendulum" / ".meta-rl.lock", "the work folder"):
        pass
    # A checkpoint that another run is about to write is refused too, whatever the folder.
    with run_lock(tmp_path / ".shared.safetensors.lock", "the checkpoint"):
        argv = ["train", *TRAIN[:-1], "--workdir", str(tmp_path / "other")]
        assert main([*argv, "--out", str(tmp_path / "shared.safetensors")]) == 2
        assert "shared.safetensors is in use" in capsys.readouterr().err
    with pytest.raises(BusyError), run_lock(tmp_path / "x.lock", "x"):
        with run_lock(tmp_path / "x.lock", "x"):
            pass


def test_leftover_temporary_files_of_a_killed_write_are_removed(tmp_path):
    work = tmp_path / "runs"
    folder = work / "pendulum"
    folder.mkdir(parents=True)
    leftover = folder / ".train_log.json.k3j9x.tmp"
    leftover.write_text("half a log")
    kept = folder / "notes.tmp"  # not one of ours: left alone
    kept.write_text("mine")
    out = tmp_path / "m.safetensors"
    stray = tmp_path / ".m.safetensors.q8w2e.tmp"
    stray.write_text("half a checkpoint")
    argv = ["train", *TRAIN, "--rounds", "1", "--workdir", str(work), "--out", str(out)]
    assert main(argv) == 0
    assert out.is_file() and not leftover.exists() and not stray.exists()
    assert kept.read_text() == "mine"
