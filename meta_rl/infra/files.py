"""Files: atomic writes, and tensors with JSON metadata in one safetensors file.

Nothing here unpickles: weights are safetensors, metadata is JSON.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from meta_rl.errors import BusyError, CheckpointError, PathError

META_KEY = "meta_rl"
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects that :func:`load_tensors` parses in metadata (meta-rl's
own files nest 5 deep); deeper is refused before parsing, so no file can exhaust the stack."""

# A JSON string (escapes included); anything but a bracket: what depth counting skips.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


TMP_SUFFIX = ".tmp"


def output_path(path: str | os.PathLike) -> Path:
    """The file that writing ``path`` replaces, checked before any work is done.

    A symbolic link is followed: its target is written (atomically) and the link stays. The
    folder is made if missing, and a file is created and removed there to prove that it
    can be written.

    Raises:
        PathError: an empty path, a directory or special file (device, FIFO, socket) at the
            destination, or a folder that cannot be made or written in.
    """
    if not str(path).strip():
        raise PathError("an output path must not be empty; give a file name")
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        kind = "a directory" if target.is_dir() else "a special file (device, FIFO or socket)"
        shown = f"{path} (-> {target})" if Path(path).is_symlink() else str(path)
        raise PathError(f"{shown} is {kind}; give the path of a regular file to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent
        )
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PathError(f"cannot write {path}: {err.strerror or err}") from None
    return target


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it over ``path`` on success.

    A crash or an exception leaves the old file (or none) in place, never a partial one.
    The destination is checked first (:func:`output_path`): a directory or a special file
    there is refused, never replaced; a symbolic link is followed.

    Raises:
        PathError: see :func:`output_path`.
    """
    target = output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path, name: str = "") -> list[Path]:
    """Delete the temporary files that killed writes left in ``folder`` (of the file
    ``name`` only, if given); call it only while holding :func:`run_lock` on what writes
    there. Returns the files removed."""
    pattern = f".{name}.*{TMP_SUFFIX}" if name else f".*{TMP_SUFFIX}"
    removed = []
    for leftover in folder.glob(pattern):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


@contextmanager
def run_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for one run, or fail at once.

    The lock is the operating system's (``flock``): a killed run releases it. The file
    records the holder's process id and is removed when the run ends.

    Raises:
        BusyError: another process holds it; the message names ``what`` is busy and its pid.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BusyError(
                f"{what} is in use by another meta-rl run (pid {holder}); wait for it to "
                "finish, or give this run another one"
            ) from None
        try:  # the file may have been removed by the holder that just released it
            same = os.fstat(fd).st_ino == os.stat(lock_file).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        lock_file.unlink(missing_ok=True)
        os.close(fd)  # releases the lock


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write a text file."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Atomically write JSON (indented, keys in insertion order)."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def save_tensors(
    path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Atomically write tensors and JSON metadata as one safetensors file."""
    payload = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    blob = st_save(payload, metadata={META_KEY: json.dumps(meta)})
    with atomic_open(path, "wb") as fh:
        fh.write(blob)


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_tensors`.

    Raises:
        CheckpointError: the file is missing, truncated, corrupted, a pickle, has no
            metadata, or metadata that is not a JSON object of bounded depth
            (:func:`parse_metadata`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such file: {path}")
    data = path.read_bytes()
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path} is not a readable meta-rl file (truncated, corrupted, or another "
            f"format such as a pickle, which is never loaded): {err}"
        ) from None
    raw = (header.get("__metadata__") or {}).get(META_KEY)
    if raw is None:
        raise CheckpointError(f"{path} is a safetensors file without meta-rl metadata")
    return tensors, parse_metadata(raw, path)


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in the JSON ``text`` (brackets inside strings do not
    count), without parsing it; a scan in linear time and constant stack."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(itertools.accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def parse_metadata(raw: str, path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object of a file's metadata.

    Raises:
        CheckpointError: not valid JSON, nested deeper than :data:`MAX_JSON_DEPTH`, a number
            Python cannot read (an integer of more than 4,300 digits), or not an object.
    """
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(
            f"{path} has malformed metadata: arrays and objects nest {depth} deep (at most "
            f"{MAX_JSON_DEPTH} are read)"
        )
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, int digit limit
        raise CheckpointError(f"{path} has corrupted metadata: {err}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: metadata is not a JSON object")
    return meta


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """An optimizer's state as named tensors (``<prefix>.<param index>.<slot>``), for
    :func:`save_tensors`; its settings are not saved (the run's config remakes them)."""
    return {
        f"{prefix}.{index}.{name}": torch.as_tensor(value)
        for index, slots in optimizer.state_dict()["state"].items()
        for name, value in slots.items()
    }


def load_optimizer(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], prefix: str
) -> None:
    """Restore the state written by :func:`optimizer_tensors` into ``optimizer``."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(f"{prefix}."):
            index, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    saved = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
