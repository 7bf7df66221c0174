"""Cache keys: a version of their schema plus every setting that changes a result.

A cached result (a base policy, an expert, an oracle run, a baseline, a benchmark's
mapping, a run's resume state) is found by the key of what made it. A change to what a
key must hold bumps :data:`KEY_VERSION`, so every older key is simply not found and its
result is made again: no key is kept valid by leaving a new setting out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

KEY_VERSION = 2


def cache_key(settings: Mapping[str, Any], *, length: int = 16) -> str:
    """The first ``length`` hex digits of the sha256 of ``settings`` (JSON, keys sorted;
    other values by ``str``) under the current :data:`KEY_VERSION`."""
    payload = json.dumps(
        {"key_version": KEY_VERSION, "settings": settings}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:length]
