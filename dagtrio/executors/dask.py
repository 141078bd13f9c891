"""`DaskExecutor`: sync actions on a Dask cluster (distributed), with honest cancellation.

The one module that imports distributed (the ``dask`` extra). The synchronous `Client`
runs its own event loop in a thread of its own; this module bridges to Trio with future
callbacks (``trio_token.run_sync_soon``) and ``trio.to_thread`` for the calls that block,
never with trio-asyncio (importing it breaks a `LocalCluster` in the same process).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any, ClassVar

import outcome
import trio

try:
    import distributed
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError('DaskExecutor needs distributed: pip install "dagtrio[dask]"') from exc

from .._actions.executor import Executor
from .._errors import describe
from .._model.spec import Ending
from .._validate import check_int, check_seconds
from ._shipping import unshippable

__all__ = ["DaskExecutor"]

# Partly typed: called through Any rather than one ignore per call.
_dd: Any = distributed

#: how often an abandoned task's worker is asked whether it still runs it
_POLL = 0.1


class _Attempt:
    """One task in flight: its worker, and its outcome once fetched."""

    __slots__ = ("address", "ended", "fetched", "node", "outcome")

    def __init__(self, node: str, address: str) -> None:
        self.node = node
        self.address = address
        #: Dask said it finished, or it was abandoned: its thread is given back once
        self.ended = False
        self.fetched = trio.Event()
        self.outcome: outcome.Outcome[Any] | None = None


class DaskExecutor(Executor):
    """Sync actions as tasks of a Dask cluster: for users who outgrow one machine.

    - ``address``: a scheduler to connect to (``"tcp://10.0.0.5:8786"``); or
    - ``client``: a `distributed.Client` the application made (never closed here); or
      neither: a `distributed.LocalCluster` of ``n_workers`` worker processes
      (``threads_per_worker`` each) started with the executor's lifetime and closed
      with it.
    - ``restart_on_cancel``: a cancelled or timed-out attempt restarts its worker, so
      the work really stops (reported ``killed``). By default the task is cancelled
      in Dask (``client.cancel``), which stops it only if it had not started: the
      attempt is reported ``abandoned``, and its worker thread counts as taken until
      the worker says the task ended, so no new task waits behind it.
    - ``connect_timeout``: seconds to wait for the scheduler before failing.

    dagtrio places each attempt on a worker thread it knows to be free (Dask's own
    placement cannot know of abandoned work). Functions ship as importable names or by
    value (cloudpickle); the action gets a `PortableCtx`; values go through Dask's
    serialization.
    """

    portable: ClassVar[bool] = True

    def __init__(
        self,
        address: str | None = None,
        *,
        client: distributed.Client | None = None,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        restart_on_cancel: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        if address is not None and client is not None:
            raise ValueError("give DaskExecutor an address or a client, not both")
        if address is not None and (not isinstance(address, str) or not address):
            raise ValueError(f"address must be a scheduler address string, got {address!r}")
        if client is not None and not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {client!r}")
        if not isinstance(restart_on_cancel, bool):
            raise TypeError(f"restart_on_cancel must be True or False, got {restart_on_cancel!r}")
        self.address = address
        self.n_workers = check_int("n_workers", n_workers, 1)
        self.threads_per_worker = check_int("threads_per_worker", threads_per_worker, 1)
        self.connect_timeout = check_seconds("connect_timeout", connect_timeout, finite=True)
        self.restart_on_cancel = restart_on_cancel
        self.ending: Ending = "killed" if restart_on_cancel else "abandoned"
        self._given = client
        self._client: distributed.Client | None = None
        self._cluster: Any = None
        #: worker address -> its threads, and those not taken by an attempt (running,
        #: or abandoned and still running there)
        self._threads: dict[str, int] = {}
        self._free: dict[str, int] = {}
        #: attempts waiting for a free thread, woken one at a time as threads free up
        self._waiting = trio.lowlevel.ParkingLot()
        #: finished tasks whose results are to be fetched, in batches, by `_fetch_all`
        self._finished: trio.MemorySendChannel[tuple[Any, _Attempt]] | None = None
        self._fetching: trio.CancelScope | None = None
        #: tasks abandoned and still running when a Trio run ended: (worker, key)
        self._abandoned: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        where = self.address or ("a given client" if self._given else "a LocalCluster")
        return f"DaskExecutor({where}, restart_on_cancel={self.restart_on_cancel})"

    @property
    def client(self) -> distributed.Client:
        """The client in use (while the executor is started)."""
        if self._client is None:
            raise RuntimeError(f"{self!r} is not started (use it in a run or `async with`)")
        return self._client

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> None:
        """Connect (or start the local cluster) and learn the workers' threads."""
        if self._given is not None:
            self._client = self._given
        else:
            self._client, self._cluster = await trio.to_thread.run_sync(self._connect)
        await self._learn_workers()
        abandoned, self._abandoned = self._abandoned, set()
        for address, key in abandoned:
            trio.lowlevel.spawn_system_task(self._abandon, None, address, key)
        send, receive = trio.open_memory_channel[tuple[Any, _Attempt]](math.inf)
        self._finished, self._fetching = send, trio.CancelScope()
        trio.lowlevel.spawn_system_task(self._fetch_all, receive, self._fetching, self._client)

    def _connect(self) -> tuple[distributed.Client, Any]:
        if self.address is not None:
            try:
                return _dd.Client(self.address, timeout=self.connect_timeout), None
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"no Dask scheduler answered at {self.address} within "
                    f"{self.connect_timeout:g}s: {describe(exc)}"
                ) from None
        cluster = _dd.LocalCluster(
            n_workers=self.n_workers,
            threads_per_worker=self.threads_per_worker,
            processes=True,
            # Its HTTP server on a free port: with None, distributed still tries 8787
            # first, which the user's own Dask dashboard may hold (seen failing in CI).
            dashboard_address=":0",
        )
        try:
            return _dd.Client(cluster), cluster
        except BaseException:
            cluster.close()
            raise

    async def _learn_workers(self, at_least: int = 1) -> None:
        """Read the cluster's workers and their threads, keeping what is taken on the
        ones already known; wait (up to ``connect_timeout``) for ``at_least`` workers."""
        workers: dict[str, int] = {}
        with trio.move_on_after(self.connect_timeout):
            while True:
                info = await trio.to_thread.run_sync(self.client.scheduler_info)
                workers = {
                    address: int(worker.get("nthreads", 1))
                    for address, worker in info.get("workers", {}).items()
                }
                if len(workers) >= at_least:
                    break
                await trio.sleep(_POLL)
        if not workers:
            raise RuntimeError(f"{self!r}: the cluster has no workers")
        taken = {
            address: self._threads[address] - free
            for address, free in self._free.items()
            if address in self._threads
        }
        self._threads = workers
        self._free = {address: n - taken.get(address, 0) for address, n in workers.items()}
        self._waiting.unpark_all()  # new workers, perhaps: everyone looks again

    async def stop(self) -> None:
        """Close what `start` opened (a given client stays open)."""
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if self._fetching is not None:
            self._fetching.cancel()
        self._fetching = self._finished = None
        # What is taken stays known (an abandoned task runs on, a worker restarts)
        # for the next lifetime on the same client; a new cluster is read afresh.
        if self._given is None:
            self._free, self._threads, self._abandoned = {}, {}, set()
        if self._given is None and client is not None:
            await trio.to_thread.run_sync(_close, client, cluster)

    # ------------------------------------------------------------------ work

    async def _take(self) -> str:
        """A worker with a free thread, taken; waits for one (reading the cluster
        again now and then: workers come and go, restarted ones under new names)."""
        while True:
            best = max(self._free, key=self._free.__getitem__, default=None)
            if best is not None and self._free[best] > 0:
                self._free[best] -= 1
                return best
            with trio.move_on_after(1.0) as waited:
                await self._waiting.park()
            if waited.cancelled_caught:
                await self._learn_workers()

    def _give_back(self, address: str) -> None:
        if address in self._free:
            self._free[address] += 1
        self._waiting.unpark()

    async def run(self, fn: Callable[[Any], Any], ctx: Any) -> Any:
        """``fn(ctx)`` as a Dask task on a free worker thread."""
        client = self.client
        address = await self._take()
        key = f"dagtrio-{getattr(fn, '__name__', 'action')}-{ctx.node_id}-{uuid.uuid4().hex}"
        try:
            # Loosely pinned: should the worker go away (a restart, a crash) the task
            # runs elsewhere rather than waiting for a worker that will not return.
            future: Any = client.submit(
                fn, ctx, key=key, pure=False, workers=[address], allow_other_workers=True
            )
        except Exception as exc:
            self._give_back(address)
            raise TypeError(unshippable(fn, ctx, exc, "the Dask cluster")) from exc
        attempt = _Attempt(ctx.node_id, address)
        token = trio.lowlevel.current_trio_token()

        def finished(_: Any) -> None:
            with suppress(trio.RunFinishedError):  # the run is over: nobody waits
                token.run_sync_soon(self._ended, future, attempt)

        future.add_done_callback(finished)  # from the client's thread
        try:
            await attempt.fetched.wait()
        except BaseException:
            # Cancelled (a timeout, a branch, a shutdown): the node ends now; the work
            # is stopped, or watched until it ends, by a task of its own.
            if not attempt.ended:
                attempt.ended = True
                trio.lowlevel.spawn_system_task(self._abandon, future, address, key)
            raise
        assert attempt.outcome is not None
        # A value, or the worker's exception raised with the worker's traceback.
        return attempt.outcome.unwrap()

    def _ended(self, future: Any, attempt: _Attempt) -> None:
        # In Trio's thread, called soon after Dask said the task ended: its thread is
        # free at once; its result is fetched with the others that ended meanwhile.
        if attempt.ended:  # abandoned meanwhile: `_abandon` gives the thread back
            return
        attempt.ended = True
        self._give_back(attempt.address)
        finished = self._finished
        if finished is None:  # stopped: nobody waits
            return
        with suppress(trio.ClosedResourceError):
            finished.send_nowait((future, attempt))

    async def _fetch_all(
        self,
        receive: trio.MemoryReceiveChannel[tuple[Any, _Attempt]],
        scope: trio.CancelScope,
        client: Any,
    ) -> None:
        # A system task for the executor's lifetime: one round trip to the cluster
        # fetches every result that is ready, rather than one per task.
        with scope:
            async for first in receive:
                batch = [first]
                with suppress(trio.WouldBlock):
                    while True:
                        batch.append(receive.receive_nowait())
                try:
                    outcomes = await trio.to_thread.run_sync(_fetch, client, batch)
                except Exception as exc:  # every waiter hears of it
                    outcomes = [outcome.Error(exc) for _ in batch]
                for (_, attempt), result in zip(batch, outcomes, strict=True):
                    attempt.outcome = result
                    attempt.fetched.set()

    async def _abandon(self, future: Any, address: str, key: str) -> None:
        """Stop a cancelled attempt's task, or watch it until it ends; then give its
        thread back. ``future`` is None for a task abandoned in an earlier lifetime."""
        client = self._client
        try:
            if client is None:
                return
            if future is not None:
                # Forgotten by the scheduler first (a synchronous call to it): otherwise
                # a restart would have the task run again on another worker.
                await trio.to_thread.run_sync(client.cancel, future)
            if future is not None and self.restart_on_cancel:
                del future
                count = len(self._threads)
                await trio.to_thread.run_sync(
                    lambda: client.restart_workers([address], raise_for_error=False)
                )
                # Its threads went with it; it comes back under another address.
                self._free.pop(address, None)
                self._threads.pop(address, None)
                await self._learn_workers(at_least=count)
            else:
                del future
                # Polled: the worker is another process, with nothing to wait on here.
                while await trio.to_thread.run_sync(_still_running, client, address, key):  # noqa: ASYNC110
                    await trio.sleep(_POLL)
        except trio.Cancelled:
            # The Trio run is ending with the task still running: its thread stays
            # taken, and the executor's next lifetime on this client watches it again.
            self._abandoned.add((address, key))
            raise
        except Exception:
            pass
        self._give_back(address)


def _fetch(client: Any, batch: list[tuple[Any, _Attempt]]) -> list[outcome.Outcome[Any]]:
    """In a thread: the outcomes of finished tasks, the values in one ``gather``."""
    futures = [future for future, _ in batch]
    ready = [future for future in futures if future.status == "finished"]
    values: dict[str, Any] = {}
    if ready:
        # Should one of them be lost meanwhile (its worker died), each on its own.
        with suppress(Exception):
            values = dict(zip([f.key for f in ready], client.gather(ready), strict=True))
    results: list[outcome.Outcome[Any]] = []
    for future, attempt in batch:
        if future.key in values:
            results.append(outcome.Value(values[future.key]))
        elif future.status == "cancelled":
            message = f"node {attempt.node!r}: its Dask task {future.key} was cancelled"
            results.append(outcome.Error(RuntimeError(message)))
        else:
            results.append(outcome.capture(future.result))
    return results


def _close(client: Any, cluster: Any) -> None:
    client.close()
    if cluster is not None:
        cluster.close()


def _executing(key: str, dask_worker: Any) -> bool:
    """On a worker: whether it still runs task ``key`` (cancelled tasks stay listed)."""
    state = dask_worker.state
    return any(task.key == key for task in state.executing | state.long_running)


def _still_running(client: Any, address: str, key: str) -> bool:
    answers = client.run(_executing, key, workers=[address], on_error="return")
    answer = answers.get(address)
    return answer is True


DaskExecutor.__module__ = "dagtrio.executors"  # where users import it from
