"""Where independent jobs run: this process, a local process pool, or a Ray cluster.

Jobs are module-level functions with picklable arguments and results (experts, oracle
runs, per-task evaluations, benchmark runs). Results come back to the calling process,
which writes every cache file, so a job never needs the caller's disk.

``backend="ray"`` submits each job as a Ray task of one CPU. It joins the cluster that
``RAY_ADDRESS`` names (``ray start --head`` on a machine, ``ray start --address=...`` on
the others, meta-rl installed on each), or starts a local one when none is named. Jobs
that write files of their own (a benchmark run writes its report) need an ``--out-dir``
that every node sees, such as a shared file system.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from meta_rl.errors import ConfigError, DependencyError

BACKENDS = ("local", "ray")


class WorkerDied(RuntimeError):
    """A worker process ended without a result (killed, or out of memory). The jobs that
    finished before were handed to ``on_done``, so their cached results are kept."""


def check_backend(backend: str) -> None:
    """Raise ``ValueError`` for an unknown backend, or Ray's when Ray is not installed."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise DependencyError("the ray backend needs Ray: pip install 'meta-rl[ray]'") from None


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    workers: int,
    backend: str = "local",
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``fn(*job)`` for every job; the results in job order.

    Args:
        fn: A module-level function (it must pickle).
        jobs: Argument tuples.
        workers: Local worker processes (0: run in this process). Ray schedules by the
            cluster's CPUs instead.
        backend: ``"local"`` or ``"ray"``.
        on_done: Called in this process with (job index, result) as each job finishes,
            so results can be cached before the others end.
    """
    check_backend(backend)
    results: list[Any] = [None] * len(jobs)

    def finish(index: int, result: Any) -> None:
        results[index] = result
        if on_done is not None:
            on_done(index, result)

    if backend == "ray":
        _run_ray(fn, jobs, finish)
    elif workers > 0 and len(jobs) > 1:
        pool = ProcessPoolExecutor(
            min(workers, len(jobs)),
            mp_context=mp.get_context("spawn"),
            initializer=import_family_modules,
            initargs=(family_modules(),),
        )
        try:
            futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise WorkerDied(
                        f"a worker process died during {fn.__name__} (killed, or out of "
                        "memory?); finished jobs are cached: run the same command again "
                        "(meta-rl train: with --resume) to go on"
                    ) from None
                finish(futures[future], result)
        except BaseException:
            # Ctrl-C, SIGTERM or a failed job: stop the workers now instead of waiting for
            # every queued job (what is finished has been handed to on_done already).
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)  # this forgets the processes
            for process in processes:
                process.terminate()
            raise
        pool.shutdown()
    else:
        for i, job in enumerate(jobs):
            finish(i, fn(*job))
    return results


def family_modules() -> list[str]:
    """The modules that define this process's registered families (a user's own, made in
    a module, included): a worker imports them so that it knows the same families."""
    from meta_rl.envs import families

    return sorted({f.module for f in families().values() if f.module})


def import_family_modules(modules: Sequence[str]) -> None:
    """Worker initializer: import ``modules`` (the caller's ``sys.path`` came with the
    spawned process). A module that fails to import is skipped with a warning: a job that
    needs its family then fails with the family's own error, and the others run."""
    import importlib
    import warnings

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as err:  # a user's module: any error of its own
            warnings.warn(
                f"a worker could not import {module} ({type(err).__name__}: {err}); the "
                "families it defines are unknown there",
                RuntimeWarning,
                stacklevel=2,
            )


def _ray_job(modules: Sequence[str], fn: Callable[..., Any], *args: Any) -> Any:
    """A Ray task: the caller's family modules imported (as the local pool's initializer
    does; a remote node needs them installed), then ``fn(*args)``."""
    import_family_modules(modules)
    return fn(*args)


def ray_init(**kwargs: Any) -> None:
    """Connect to ``RAY_ADDRESS``'s cluster, or start a local one (once per process)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            log_to_driver=False,
            **kwargs,
        )


def _run_ray(fn: Callable[..., Any], jobs: Sequence[tuple], finish: Callable) -> None:
    import ray

    ray_init()
    remote = ray.remote(num_cpus=1)(_ray_job)
    modules = family_modules()
    pending = {remote.remote(modules, fn, *job): i for i, job in enumerate(jobs)}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            finish(pending.pop(done[0]), ray.get(done[0]))
    except BaseException:
        for ref in pending:  # do not leave the cluster busy with work nobody will read
            ray.cancel(ref, force=True)
        raise


def call_on_one_thread(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``fn(*args)`` on one torch thread (the caller's count is given back): a job for
    :func:`run_jobs` whose own code leaves the thread count alone."""
    from meta_rl.infra.threads import torch_threads

    with torch_threads(1):
        return fn(*args)
