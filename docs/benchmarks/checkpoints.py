"""The checkpoints behind the published benchmark results: recorded, not committed.

The benchmark caches every mapping and baseline it trains (``*.safetensors``) beside its
reports. Git keeps the reports (JSON, Markdown, plots) and, in each published folder's
``checkpoints.json``, the sha256 of every checkpoint the reports were made from and the
command that remakes them; the checkpoints themselves are ignored.

    python docs/benchmarks/checkpoints.py verify [FOLDER ...]

checks the checkpoints on this disk against the recorded digests (after the command has
remade them, or after copying them from a machine that has them). ``record FOLDER
--command "..."`` writes a folder's manifest from the checkpoints on disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = "checkpoints.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(folder: Path, command: str) -> dict:
    """The manifest of ``folder``: every checkpoint below it with its digest and size."""
    files = sorted(folder.rglob("*.safetensors"))
    if not files:
        raise SystemExit(f"{folder}: no checkpoints to record")
    manifest = {
        "command": command,
        "checkpoints": {
            str(f.relative_to(folder)): {"sha256": sha256(f), "bytes": f.stat().st_size}
            for f in files
        },
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify(folder: Path) -> list[str]:
    """Problems of ``folder``'s checkpoints on this disk (missing ones are only counted)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    problems, missing = [], 0
    for name, entry in manifest["checkpoints"].items():
        path = folder / name
        if not path.exists():
            missing += 1
        elif sha256(path) != entry["sha256"]:
            problems.append(f"{path}: differs from the recorded checkpoint")
    total = len(manifest["checkpoints"])
    print(
        f"{folder.relative_to(HERE.parent.parent)}: {total - missing - len(problems)} of "
        f"{total} checkpoints match, {missing} not on this disk "
        f"(remade by: {manifest['command']})"
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("verify", help="check the checkpoints on disk against the manifests")
    p.add_argument("folders", nargs="*", type=Path)
    p = sub.add_parser("record", help="write a folder's manifest from its checkpoints")
    p.add_argument("folder", type=Path)
    p.add_argument("--command", required=True, help="the command that remakes them")
    args = parser.parse_args(argv)
    if args.action == "record":
        record(args.folder.resolve(), args.command)
        return 0
    folders = [f.resolve() for f in args.folders] or sorted(m.parent for m in HERE.rglob(MANIFEST))
    problems = [p for folder in folders for p in verify(folder)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
