# SPDX-License-Identifier: GPL-3.0-or-later
"""Running independent tasks serially in this process or on a dask.distributed cluster.

:func:`executor` opens an executor for a block of work: ``workers=0`` runs every task at once in this process
(no dask: the reference run); ``scheduler`` connects a :class:`distributed.Client` to a running cluster; otherwise
a :class:`distributed.LocalCluster` of ``workers`` single-threaded processes (default: one per CPU) is started on
the loopback (its HTTP server and dashboard too, on a free port) and closed when the block ends, also on an error or
Ctrl-C.

A task may take other tasks' futures as arguments, alone or in a list; it receives their results. On a worker, a
task computes the dask arrays it uses itself, with dask's synchronous scheduler (a worker is one single-threaded
process), instead of sending them to the cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

LOG = logging.getLogger(__name__)


class Future(Protocol):
    """What :meth:`Executor.submit` returns."""

    def result(self) -> Any:
        """The task's result (raises the task's error)."""


class Executor(Protocol):
    """Runs tasks; :func:`executor` gives one."""

    #: Tasks worth submitting beyond the one waited for (0 for the serial executor, which runs them on submission).
    ahead: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` as a task."""

    def put(self, value: Any) -> Future:
        """Hand a (large) argument to the workers once; tasks take it by the future returned."""

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        """The futures in the order they finish."""


class _Done:
    """The future of a task the serial executor has already run."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        """The task's result."""
        return self.value


def _resolve(arg: Any) -> Any:
    """An argument with the serial executor's futures (alone or in a list) replaced by their results."""
    if isinstance(arg, _Done):
        return arg.value
    if isinstance(arg, list):
        return [_resolve(item) for item in arg]
    return arg


class SerialExecutor:
    """Runs each task when it is submitted, in this process."""

    ahead = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> _Done:
        """Run ``fn(*args)`` now."""
        return _Done(fn(*(_resolve(arg) for arg in args)))

    def put(self, value: Any) -> _Done:
        """The value, as a future."""
        return _Done(value)

    def as_completed(self, futures: Iterable[_Done]) -> Iterator[_Done]:
        """The futures in the order given (all are done)."""
        return iter(list(futures))


def _in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` with dask computing in this worker, synchronously (not as sub-tasks sent to the cluster)."""
    import dask

    with dask.config.set(scheduler="sync"):
        return fn(*args)


class DaskExecutor:
    """Submits tasks to a dask.distributed client."""

    def __init__(self, client: Any):
        self.client = client
        self.ahead = 2 * max(sum(client.nthreads().values()), 1)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Submit ``fn(*args)`` (never merged with an equal earlier task)."""
        return self.client.submit(_in_worker, fn, *args, pure=False)

    def put(self, value: Any) -> Any:
        """Scatter the value to a worker (rather than sending it in the task graph)."""
        return self.client.scatter(value, hash=False)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """The futures in the order they finish."""
        from distributed import as_completed

        return iter(as_completed(list(futures), loop=self.client.loop))


def describe(workers: int | None, scheduler: str | None) -> str:
    """How :func:`executor` will run the tasks, in words."""
    if scheduler is not None:
        return f"the dask cluster at {scheduler}"
    if workers == 0:
        return "this process (serial)"
    return f"a local dask cluster of {workers or os.cpu_count() or 1} worker processes"


@contextlib.contextmanager
def executor(*, workers: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """Open an executor (see the module notes); a started local cluster is closed on leaving the block.

    Args:
        workers: Worker processes of a local cluster (None: one per CPU; 0: serial, in this process).
        scheduler: Address of a running dask scheduler, e.g. ``tcp://10.0.0.5:8786`` (excludes ``workers``).

    Raises:
        ValueError: For both ``workers`` and ``scheduler``, or negative ``workers``.
        ImportError: If dask.distributed is needed and not installed.
    """
    if scheduler is not None and workers is not None:
        raise ValueError("give a scheduler address or a number of workers, not both")
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if scheduler is None and workers == 0:
        yield SerialExecutor()
        return
    try:
        import dask
        import distributed
    except ImportError as error:
        raise ImportError("running on several workers needs dask.distributed: pip install distributed (or use "
                          "workers=0)") from error
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            # dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which fixes glibc's mmap threshold: every large
            # numpy temporary is then mapped afresh, and the simulation ran 2.5 times slower.
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                target = stack.enter_context(distributed.LocalCluster(
                    n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address="127.0.0.1:0"))
        else:
            target = scheduler
        # Not the default dask scheduler: dask work of this process (e.g. writing the stores) stays here.
        client = stack.enter_context(distributed.Client(target, set_as_default=False))
        LOG.info("running on %s (%s)", describe(workers, scheduler), client.scheduler.address)
        yield DaskExecutor(client)
