"""Files: atomic writes with ordinary permissions; tensors and metadata round trip."""

from __future__ import annotations

import os

import pytest
import torch

from meta_rl.infra.files import atomic_open, load_tensors, save_tensors, write_json


def test_atomic_write_keeps_old_file_on_error_and_uses_umask(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"x": 1})
    with pytest.raises(RuntimeError), atomic_open(path, "w") as fh:
        fh.write("partial")
        raise RuntimeError("crash mid-write")
    assert path.read_text().strip().startswith("{")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_tensors_round_trip(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors(path, {"w": torch.arange(6.0).reshape(2, 3)}, {"note": "hi", "n": [1, 2]})
    tensors, meta = load_tensors(path)
    assert torch.equal(tensors["w"], torch.arange(6.0).reshape(2, 3))
    assert meta == {"note": "hi", "n": [1, 2]}
