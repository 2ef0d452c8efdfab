"""Where a batch run's tasks execute: this process (the default) or a Dask distributed cluster.

A task is a plain function applied to one item (a raster or a window of one); both backends yield
``(item, result)`` as tasks finish. Dask is optional: asking for it without ``distributed`` installed
is refused with the command that installs it. With Dask, a worker that dies (killed, out of memory)
has its tasks run again on another worker by Dask's scheduler; a task that keeps killing workers ends
the run with Dask's ``KilledWorker`` error, reported as such. Outputs are all-or-nothing
(engine/raster/staging.py), so a killed task never leaves a half-written output, only its temporary folder,
which :meth:`DaskBackend.close` removes for the workers of a local cluster.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..engine.errors import EngineError
from ..engine.raster.staging import remove_leftovers

DASK_MISSING = ("Running on Dask needs the 'distributed' package, which is not installed for this Python. "
                "Install it with: {python} -m pip install 'dask[distributed]' (in a virtual environment), "
                "or on Debian: apt install python3-distributed. Or leave out --workers/--scheduler to run "
                "in this process.")


class LocalBackend:
    """Runs the tasks one after another in this process."""

    name = "local"

    def map(self, task: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Tuple[Any, Any]]:
        for item in items:
            yield item, task(item)

    def close(self, folders: Iterable[str] = ()) -> None:
        """Nothing to shut down."""


class DaskBackend:
    """Runs the tasks on a Dask cluster: a scheduler's address, or a local cluster of worker processes."""

    name = "dask"

    def __init__(self, scheduler: Optional[str] = None, workers: int = 0) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:
            import sys

            raise EngineError(DASK_MISSING.format(python=sys.executable)) from exc
        self._cluster = None
        if scheduler:
            self.client = Client(scheduler)
        else:
            # One task at a time per worker process, which torch runs on its share of the cores (Dask's
            # default of one BLAS/OpenMP thread per worker halves a 2-core machine's speed with 1 worker).
            threads = max(1, (os.cpu_count() or 1) // workers)
            environ = {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None)
            self.client = Client(self._cluster)
        self._local_pids: List[int] = list(self.client.run(os.getpid).values()) if self._cluster else []

    def map(self, task: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Tuple[Any, Any]]:
        from distributed import as_completed

        futures = {self.client.submit(task, item, pure=False): item for item in items}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self, folders: Iterable[str] = ()) -> None:
        """Shut the client (and a local cluster) down; remove temporary folders of dead local workers."""
        if self._cluster is not None:
            self._local_pids += list(self.client.run(os.getpid).values())
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        folders = list(folders)
        for pid in dict.fromkeys(self._local_pids):
            remove_leftovers(folders, pid)


def make_backend(scheduler: Optional[str], workers: int) -> Any:
    """The Dask backend when a scheduler or a worker count is given, else the local one."""
    if scheduler or workers:
        return DaskBackend(scheduler, workers)
    return LocalBackend()
