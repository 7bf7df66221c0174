"""Validation of the objectives' settings, with errors that name the setting."""

from __future__ import annotations

import math
from typing import Any

from meta_rl.errors import ConfigError


def check_counts(config: Any, prefix: str, names: tuple[str, ...], minimum: int = 1) -> None:
    """Raise ``ValueError`` unless each named field is a whole number of at least
    ``minimum`` (a bool is not a number here)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f"{prefix}.{name} must be a whole number of at least {minimum}, got {value!r}"
            )


def check_reals(config: Any, prefix: str, names: tuple[str, ...], *, positive: bool) -> None:
    """Raise ``ValueError`` unless each named field is finite and positive (or, with
    ``positive=False``, at least 0)."""
    for name in names:
        value = getattr(config, name)
        if not math.isfinite(value) or not (value > 0 if positive else value >= 0):
            what = "a positive number" if positive else "a number of at least 0"
            raise ConfigError(f"{prefix}.{name} must be {what}")
