"""Dynamic batching: requests that arrive together are stacked into one model run, answered each on its own.

A ``Batcher`` owns one model. ``submit`` puts a preprocessed array of n >= 1 samples on a bounded queue and
waits; ``workers`` collector tasks each take the first waiting item, gather more until ``max_batch`` samples
or ``max_delay_ms`` have passed, run ``Classifier.predict_rows`` once on the stack in a worker thread (the
event loop stays free) and hand every request its own rows. A full queue refuses at once (QueueFull → 503).
A batch that fails is retried one request at a time, so one bad input cannot fail its neighbours. A
collector waits only while other requests for the model are still arriving (being read or decoded), so a
lone request never pays the delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from edgecnn.errors import NonFiniteOutputError
from edgecnn.runtime.classifier import Classifier
from edgecnn.serve.metrics import Metrics


class QueueFull(Exception):
    """More samples are waiting than ``max_queue`` allows."""


@dataclass(slots=True, eq=False)  # identity: `in`/`remove` on the queue must never compare the arrays
class _Item:
    x: np.ndarray
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Gathers concurrent requests for one model into batches."""

    def __init__(
        self,
        name: str,
        classifier: Classifier,
        *,
        max_batch: int,
        max_delay_ms: float,
        max_queue: int,
        workers: int,
        metrics: Metrics,
    ) -> None:
        self.name, self.classifier = name, classifier
        self.max_batch, self.max_delay = max_batch, max_delay_ms / 1000.0
        self.max_queue, self.workers = max_queue, workers
        self.metrics = metrics
        self._queue: deque[_Item] = deque()
        self._queued_samples = 0
        self._wakeup: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False
        self.arriving = 0  # requests received for this model, still being read or decoded (set by the app)
        self.runs = 0  # model calls made
        metrics.queue_depth[name] = lambda: self._queued_samples

    @property
    def depth(self) -> int:
        return self._queued_samples

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"edgecnn-batch-{self.name}")
        self._tasks = [
            asyncio.create_task(self._collect(), name=f"batcher-{self.name}-{i}") for i in range(self.workers)
        ]

    async def stop(self) -> None:
        """Finish every queued request, then stop the collectors and the threads."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for the n samples of ``x``, computed in some batch.

        Raises:
            QueueFull: the queue holds ``max_queue`` samples already.
            Whatever ``predict_proba`` raises for this input on its own.
        """
        n = len(x)
        if self._queued_samples + n > self.max_queue and self._queued_samples > 0:
            raise QueueFull(f"{self.name}: {self._queued_samples} samples are waiting (limit {self.max_queue})")
        if self._stopping:
            raise QueueFull(f"{self.name}: the server is shutting down")
        item = _Item(x, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._queued_samples += n
        assert self._wakeup is not None, "Batcher.start() was not awaited"
        self._wakeup.set()
        try:
            return await item.future
        except asyncio.CancelledError:  # timed out or client gone: drop it if it has not run yet
            if item in self._queue:
                self._queue.remove(item)
                self._queued_samples -= n
            raise

    def _take(self, batch: list[_Item], size: int) -> int:
        while self._queue and (not batch or size + len(self._queue[0].x) <= self.max_batch):
            item = self._queue.popleft()
            self._queued_samples -= len(item.x)
            if item.future.done():
                continue
            batch.append(item)
            size += len(item.x)
        return size

    async def _collect(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            batch: list[_Item] = []
            size = self._take(batch, 0)
            deadline = (batch[0].enqueued if batch else time.perf_counter()) + self.max_delay
            # wait for company only while more requests are on their way: a lone request runs at once
            while size < self.max_batch and self.max_batch > 1 and (self._queue or self.arriving > 0):
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                if not self._queue:
                    self._wakeup.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                size = self._take(batch, size)
            if batch:
                await self._run(loop, batch, size)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item], size: int) -> None:
        x = batch[0].x if len(batch) == 1 else np.concatenate([item.x for item in batch])
        start = time.perf_counter()
        try:
            probs, ok = await loop.run_in_executor(self._executor, self.classifier.predict_rows, x)
        except Exception as err:
            if len(batch) == 1:
                _settle(batch[0], error=err)
                return
            for item in batch:  # isolate the culprit: everyone else still gets an answer
                await self._run(loop, [item], len(item.x))
            return
        finally:
            self.runs += 1
            self.metrics.batch_size.observe(size, self.name)
            self.metrics.batch_seconds.observe(time.perf_counter() - start, self.name)
        offset = 0
        for item in batch:
            n = len(item.x)
            bad = np.flatnonzero(~ok[offset : offset + n])
            if bad.size:  # NaN/Inf for this request's input: its error; its batch-mates keep their answers
                which = "its input" if n == 1 else f"sample(s) {bad.tolist()} of its {n}"
                _settle(item, error=NonFiniteOutputError(f"the model's output for {which} is NaN/Inf: no score"))
            else:
                _settle(item, result=probs[offset : offset + n])
            offset += n


def _settle(item: _Item, *, result: np.ndarray | None = None, error: BaseException | None = None) -> None:
    if item.future.done():
        return
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(result)  # type: ignore[arg-type]
