"""Torch's thread count for the library's small policies, set for a scope and given back.

PyTorch runs on as many threads as the machine has cores. For the small policies of this
project (two hidden layers of 64, minibatches of 64) the threads cost more than they save:
on a two-core machine with other work on it, ``adapt("pendulum", env).learn(5000)`` took
20-52 s on torch's default of two threads and 3.3-4.2 s on one (README, "In your own
project"); on an idle machine one thread was no slower.
And a float sum depends on the thread count, so one count is also what makes a seeded run
give the same numbers in any process.

So the models :func:`~meta_rl.agents.adapt` and :func:`~meta_rl.agents.base_policy` return
run ``learn`` on one thread (their ``threads=`` argument; ``None`` leaves torch's setting
alone) and give the process its own count back when ``learn`` returns or raises. Nothing
else about them changes: their class is SB3's PPO or A2C with only ``learn`` wrapped
(``isinstance(model, stable_baselines3.PPO)`` holds, and ``PPO.load`` reads what
``model.save`` writes). The count is process-wide while ``learn`` runs, as torch's
setting always is. For your own SB3 models: ``with torch_threads(1): model.learn(...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

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


class ScopedPPO(PPO):
    """SB3's PPO whose ``learn`` runs on ``learn_threads`` torch threads (then restores)."""

    __slots__ = ()  # no state of its own, so that a PPO's class can become this one
    learn_threads: int | None = DEFAULT_THREADS

    def learn(self, *args: Any, **kwargs: Any) -> Any:
        with torch_threads(self.learn_threads):
            return super().learn(*args, **kwargs)


class ScopedA2C(A2C):
    """SB3's A2C whose ``learn`` runs on ``learn_threads`` torch threads (then restores)."""

    __slots__ = ()
    learn_threads: int | None = DEFAULT_THREADS

    def learn(self, *args: Any, **kwargs: Any) -> Any:
        with torch_threads(self.learn_threads):
            return super().learn(*args, **kwargs)


_SCOPED: dict[type[BaseAlgorithm], type[BaseAlgorithm]] = {PPO: ScopedPPO, A2C: ScopedA2C}


def scope_learn(model: BaseAlgorithm, threads: int | None) -> BaseAlgorithm:
    """Make ``model.learn`` run on ``threads`` torch threads (``None``: as the process
    runs); returns ``model``. Only its class changes, to the subclass that adds this."""
    check_threads(threads)
    if threads is None:
        return model
    scoped = _SCOPED.get(type(model))
    if scoped is None and not isinstance(model, (ScopedPPO, ScopedA2C)):
        raise ConfigError(f"cannot scope the threads of a {type(model).__name__} model")
    if scoped is not None:
        model.__class__ = scoped  # the same object; the subclass adds `learn` alone
    model.learn_threads = threads  # type: ignore[attr-defined]
    return model
