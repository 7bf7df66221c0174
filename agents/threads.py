"""SB3 models whose ``learn`` runs on a chosen torch thread count, then gives it back.

The models :func:`~meta_rl.agents.adapt` and :func:`~meta_rl.agents.base_policy` return run
``learn`` on one thread (their ``threads=`` argument; ``None`` leaves torch's setting
alone; why one: :mod:`meta_rl.infra.threads`, the timings: the README's "In your own
project") and give the process its own count back when ``learn`` returns or raises.
Nothing else about them changes: their class is SB3's PPO, A2C, SAC or TD3 with only ``learn``
wrapped (``isinstance(model, stable_baselines3.PPO)`` holds, and ``PPO.load`` reads what
``model.save`` writes). The count is process-wide while ``learn`` runs, as torch's setting
always is. For your own SB3 models: ``with torch_threads(1): model.learn(...)``.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from meta_rl.errors import ConfigError
from meta_rl.infra.threads import DEFAULT_THREADS, check_threads, torch_threads

__all__ = [
    "DEFAULT_THREADS",
    "ScopedA2C",
    "ScopedPPO",
    "ScopedSAC",
    "ScopedTD3",
    "check_threads",
    "scope_learn",
    "torch_threads",
]


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


class ScopedSAC(SAC):
    """SB3's SAC whose ``learn`` runs on ``learn_threads`` torch threads (then restores)."""

    __slots__ = ()
    learn_threads: int | None = DEFAULT_THREADS

    def learn(self, *args: Any, **kwargs: Any) -> Any:
        with torch_threads(self.learn_threads):
            return super().learn(*args, **kwargs)


class ScopedTD3(TD3):
    """SB3's TD3 whose ``learn`` runs on ``learn_threads`` torch threads (then restores)."""

    __slots__ = ()
    learn_threads: int | None = DEFAULT_THREADS

    def learn(self, *args: Any, **kwargs: Any) -> Any:
        with torch_threads(self.learn_threads):
            return super().learn(*args, **kwargs)


_SCOPED: dict[type[BaseAlgorithm], type[BaseAlgorithm]] = {
    PPO: ScopedPPO,
    A2C: ScopedA2C,
    SAC: ScopedSAC,
    TD3: ScopedTD3,
}


def scope_learn(model: BaseAlgorithm, threads: int | None) -> BaseAlgorithm:
    """Make ``model.learn`` run on ``threads`` torch threads (``None``: as the process
    runs); returns ``model``. Only its class changes, to the subclass that adds this."""
    check_threads(threads)
    if threads is None:
        return model
    scoped = _SCOPED.get(type(model))
    if scoped is None and not isinstance(model, tuple(_SCOPED.values())):
        raise ConfigError(f"cannot scope the threads of a {type(model).__name__} model")
    if scoped is not None:
        model.__class__ = scoped  # the same object; the subclass adds `learn` alone
    model.learn_threads = threads  # type: ignore[attr-defined]
    return model
