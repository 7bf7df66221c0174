"""The errors meta-rl raises for what a caller can fix, as one small hierarchy.

Catch :class:`MetaRLError` for all of them, or the kind you mean. Each is also a
``ValueError``, so code written against Gymnasium's conventions (a bad argument is a
``ValueError``) keeps working. Anything else that escapes meta-rl is a bug, not bad input:
the command line prints its traceback and exits with status 1, where these exit with
status 2 and one line.
"""

from __future__ import annotations


class MetaRLError(ValueError):
    """Base of every error meta-rl raises for input a caller can correct."""


class TaskError(MetaRLError):
    """A task, a feature value or a descriptor that the family does not accept."""


class FamilyError(MetaRLError):
    """An unknown family, a family that cannot be built, or one that does not fit what is
    asked of it (an objective for another action space, say)."""


class ConfigError(MetaRLError):
    """A setting out of range or of the wrong type (training, phases, benchmark)."""


class CheckpointError(MetaRLError):
    """A checkpoint that is missing, unreadable, malformed or for something else."""


class PathError(MetaRLError):
    """An output path that cannot be written: empty, a directory or special file, or in a
    folder that cannot be made or written in. Checked before any work."""


class BusyError(MetaRLError):
    """A work folder or output that another meta-rl run is using right now."""


class DependencyError(MetaRLError):
    """An optional dependency that a feature needs is not installed (the message names the
    extra to install)."""


__all__ = [
    "BusyError",
    "CheckpointError",
    "ConfigError",
    "DependencyError",
    "FamilyError",
    "MetaRLError",
    "PathError",
    "TaskError",
]
