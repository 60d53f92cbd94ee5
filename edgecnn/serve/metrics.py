"""Prometheus metrics in the text exposition format (hand-written: no extra dependency for five series).

Thread-safe enough for the server: every update happens on the event loop thread, except batch
observations, which take the lock.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Histogram:
    """A cumulative histogram per label set."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...], label_names: tuple[str, ...]) -> None:
        self.name, self.help, self.buckets, self.label_names = name, help_text, buckets, label_names
        self._counts: dict[tuple[str, ...], list[int]] = {}
        self._sums: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts = self._counts.setdefault(labels, [0] * (len(self.buckets) + 1))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self._sums[labels] += value

    def count(self, *labels: str) -> int:
        with self._lock:
            return self._counts.get(labels, [0])[-1]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for labels, counts in sorted(self._counts.items()):
                pairs = list(zip(self.label_names, labels, strict=True))
                for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                    lines.append(f"{self.name}_bucket{_labels([*pairs, ('le', _num(bound))])} {n}")
                lines.append(f"{self.name}_sum{_labels(pairs)} {_num(self._sums[labels])}")
                lines.append(f"{self.name}_count{_labels(pairs)} {counts[-1]}")
        return lines


class Counter:
    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...]) -> None:
        self.name, self.help, self.label_names = name, help_text, label_names
        self._values: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            for labels, value in sorted(self._values.items()):
                lines.append(f"{self.name}{_labels(zip(self.label_names, labels, strict=True))} {_num(value)}")
        return lines


class Metrics:
    """The server's series: requests, request latency, batch sizes, queue depth, errors by kind."""

    def __init__(self) -> None:
        self.requests = Histogram(
            "edgecnn_request_duration_seconds",
            "Time from request received to answer, by route and status.",
            LATENCY_BUCKETS,
            ("route", "status"),
        )
        self.batch_size = Histogram(
            "edgecnn_batch_size", "Samples per model run (dynamic batching).", BATCH_BUCKETS, ("model",)
        )
        self.batch_seconds = Histogram(
            "edgecnn_batch_duration_seconds", "Time of one model run on a gathered batch.", LATENCY_BUCKETS, ("model",)
        )
        self.errors = Counter("edgecnn_errors_total", "Requests answered with an error, by kind.", ("kind",))
        self.queue_depth: dict[str, Callable[[], int]] = {}
        self.in_flight = 0  # requests received and not yet answered (/metrics itself excluded)

    def render(self) -> str:
        lines: list[str] = []
        for series in (self.requests, self.batch_size, self.batch_seconds, self.errors):
            lines += series.render()
        lines += [
            "# HELP edgecnn_requests_in_flight Requests received and not yet answered.",
            "# TYPE edgecnn_requests_in_flight gauge",
            f"edgecnn_requests_in_flight {self.in_flight}",
            "# HELP edgecnn_queue_depth Samples waiting for a model run.",
            "# TYPE edgecnn_queue_depth gauge",
        ]
        for model, depth in sorted(self.queue_depth.items()):
            lines.append(f"edgecnn_queue_depth{_labels([('model', model)])} {depth()}")
        return "\n".join(lines) + "\n"
