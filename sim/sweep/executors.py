"""Where runs execute: in this process, a local process pool, or a Dask cluster.

Every executor maps a picklable function over tasks and yields ``(task,
outcome)`` as runs finish, in any order.  The function (``sim.sweep.worker.
execute``) catches a run's own exceptions; what an executor adds is the case
where the worker process itself dies — that run is reported as failed and the
others go on.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from sim.errors import InputError, elide
from sim.sweep.worker import RunOutcome, RunTask

Runner = Callable[[RunTask], RunOutcome]


class Executor(Protocol):
    name: str

    def map(self, fn: Runner, tasks: Iterable[RunTask]) -> Iterator[tuple[RunTask, RunOutcome]]:
        ...


def _died(task: RunTask, why: str) -> RunOutcome:
    return RunOutcome(task.run_id, task.seed, error=why)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SerialExecutor:
    """Runs one after the other in this process (the bench's sequential baseline)."""

    name = "serial"

    def map(self, fn: Runner, tasks: Iterable[RunTask]) -> Iterator[tuple[RunTask, RunOutcome]]:
        for task in tasks:
            yield task, fn(task)


class LocalExecutor:
    """A pool of worker processes on this machine (default: one per core).

    Workers come from a *forkserver* that has imported ``sim`` once, so each
    starts in a fraction of a second and loads numba's cached kernel.  At most
    ``workers`` runs are in flight.  If a worker dies (killed, out of memory),
    the pool breaks and every run in flight loses its result: each of those is
    re-run alone in a fresh one-worker pool — only a run whose worker dies again
    is reported failed — and a fresh pool takes the rest.
    """

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        if self.workers < 1:
            raise InputError(f"--workers must be at least 1 (got {self.workers})")

    def _pool(self, workers: int | None = None) -> ProcessPoolExecutor:
        ctx: Any
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["sim.sweep._preload"])
        else:  # Windows: each worker imports capsim and loads the kernel itself
            ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(max_workers=workers or self.workers, mp_context=ctx)

    def map(self, fn: Runner, tasks: Iterable[RunTask]) -> Iterator[tuple[RunTask, RunOutcome]]:
        queue = list(tasks)
        queue.reverse()
        while queue:
            suspects: list[RunTask] = []
            yield from self._until_broken(fn, queue, suspects)
            # The pool broke: one of the runs in flight killed its worker, and every
            # run in flight lost its result.  Each is re-run alone in a fresh pool, so
            # only the run whose worker dies again is reported failed.
            for task in suspects:
                yield task, self._alone(fn, task)

    def _until_broken(self, fn: Runner, queue: list[RunTask],
                      suspects: list[RunTask]) -> Iterator[tuple[RunTask, RunOutcome]]:
        """Run ``queue`` (popped from the end) until it is empty or the pool breaks;
        the runs in flight when it broke go to ``suspects``."""
        pool = self._pool()
        in_flight: dict[Future[RunOutcome], RunTask] = {}
        broken = False
        try:
            while queue or in_flight:
                while queue and len(in_flight) < self.workers and not broken:
                    task = queue.pop()
                    in_flight[pool.submit(fn, task)] = task
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                finished = []
                for fut in done:
                    task = in_flight.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        suspects.append(task)
                        continue
                    except Exception as exc:  # e.g. a result that does not pickle
                        outcome = _died(task, f"{type(exc).__name__}: {exc}")
                    finished.append((task, outcome))
                # Keep the workers busy while the caller writes what finished.
                while queue and len(in_flight) < self.workers and not broken:
                    task = queue.pop()
                    in_flight[pool.submit(fn, task)] = task
                yield from finished
                if broken and not in_flight:
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _alone(self, fn: Runner, task: RunTask) -> RunOutcome:
        pool = self._pool(1)
        try:
            return pool.submit(fn, task).result()
        except BrokenProcessPool:
            return _died(task, "worker process died (killed or out of memory?) while this "
                               "run was in flight")
        except Exception as exc:
            return _died(task, f"{type(exc).__name__}: {exc}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """A ``dask.distributed`` cluster: the scheduler at ``scheduler``, or a local
    cluster of ``workers`` single-threaded worker processes started for this sweep.

    Workers need capsim installed (the same version) and the trace files the
    scenario names at the same absolute paths; results travel back to this
    process, which writes them — no shared file system is needed for output.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 timeout_s: float = 20.0):
        self.scheduler = scheduler
        self.workers = workers
        self.timeout_s = timeout_s
        self._connection: tuple[Any, Any] | None = None

    def connect(self) -> DaskExecutor:
        """Connect now (to the scheduler, or start the local cluster) and wait for its
        workers, so that a cluster that cannot run anything is one InputError before
        the sweep writes a file.  :meth:`map` uses this connection and closes it."""
        if self._connection is None:
            self._connection = self._client()
        return self

    def _client(self) -> tuple[Any, Any]:
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - a dependency
            raise InputError("--executor dask needs dask.distributed "
                             "(pip install 'dask[distributed]')") from None
        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout=self.timeout_s)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"cannot connect to the Dask scheduler at "
                                 f"{self.scheduler}: {elide(str(exc), 160)}") from None
            want = self.workers or 1
            try:
                client.wait_for_workers(want, timeout=self.timeout_s)
            except (OSError, TimeoutError) as exc:
                client.close()
                have = len(client.scheduler_info().get("workers", {})) if client.status == \
                    "running" else 0
                raise InputError(f"the Dask scheduler at {self.scheduler} has {have} of the "
                                 f"{want} worker{'s' * (want != 1)} needed after "
                                 f"{self.timeout_s:g} s ({type(exc).__name__})") from None
            return client, None
        try:
            cluster = LocalCluster(n_workers=self.workers or default_workers(),
                                   threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            return Client(cluster), cluster
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot start a local Dask cluster: "
                             f"{elide(f'{type(exc).__name__}: {exc}', 160)}") from None

    def map(self, fn: Runner, tasks: Iterable[RunTask]) -> Iterator[tuple[RunTask, RunOutcome]]:
        from distributed import as_completed

        todo = list(tasks)
        connection, self._connection = self._connection, None
        if not todo:
            if connection is not None:
                connection[0].close()
                if connection[1] is not None:
                    connection[1].close()
            return
        client, cluster = connection or self._client()
        try:
            keys = [f"capsim-run-{t.run_id}-seed={t.seed}-{os.getpid()}-{i}"
                    for i, t in enumerate(todo)]
            futures = client.map(fn, todo, key=keys, pure=False)
            by_key = dict(zip(keys, todo, strict=True))
            for fut in as_completed(futures):
                task = by_key[fut.key]
                if fut.status == "finished":
                    outcome = fut.result()
                else:
                    exc = fut.exception()
                    outcome = _died(task, f"{type(exc).__name__}: {exc}")
                fut.release()
                yield task, outcome
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def make_executor(kind: str = "local", *, scheduler: str | None = None,
                  workers: int | None = None) -> Executor:
    """``local`` (default), ``dask`` (implied by ``scheduler``) or ``serial``."""
    if scheduler and kind == "local":
        kind = "dask"
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(scheduler, workers)
    if kind == "serial":
        return SerialExecutor()
    raise InputError(f"unknown executor {kind!r} (known: local, dask)")
