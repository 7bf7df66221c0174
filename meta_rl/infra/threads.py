"""Torch's thread count, set for a scope and given back.

Small policies (two hidden layers of 64, minibatches of 64) gain nothing from more threads
and lose much when threads contend for cores; and a float sum depends on the thread count,
so one count is also what makes a seeded run give the same numbers in any process. The
library's own building, training and learning run on :data:`DEFAULT_THREADS` through
:func:`torch_threads`, which gives the process its own count back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from meta_rl.errors import ConfigError

DEFAULT_THREADS = 1
"""Torch threads for the library's models while they build and learn."""


def check_threads(threads: int | None) -> int | None:
    """``threads`` if it is a positive int or ``None``.

    Raises:
        ConfigError: anything else.
    """
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ConfigError(f"threads must be a positive int or None, got {threads!r}")
    return threads


@contextmanager
def torch_threads(threads: int | None = DEFAULT_THREADS) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``; the previous count is set
    again afterwards, also when the block raises. ``None`` changes nothing."""
    check_threads(threads)
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    if previous != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
