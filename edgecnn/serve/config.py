"""What ``edgecnn serve`` is asked to do: a frozen config, validated once, shared by the CLI and the Python API."""

from __future__ import annotations

from dataclasses import dataclass

from edgecnn.errors import UsageError
from edgecnn.runtime.providers import Provider

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Server, batching and limit settings.

    Args:
        host: address to bind; loopback unless told otherwise (an inference server on 0.0.0.0 is a choice).
        port: TCP port (0: a free one, for tests).
        max_batch: most samples run in one model call; 1 turns dynamic batching off.
        max_delay_ms: how long the first request of a batch waits for company.
        max_queue: samples waiting for the model beyond which a request is refused with 503 at once.
        workers: batches that may run at the same time, per model (each in its own thread).
        provider: onnxruntime execution provider for every model.
        threads: intra-op threads per session (None: edgecnn's tuned or default choice).
        spin: onnxruntime's intra-op spin-wait; off by default (the server's own threads share the cores);
            None keeps the tuned or default choice (``MODEL.tune.json``), which a set value overrides.
        max_body_bytes: a request body larger than this is refused with 413.
        request_timeout_s: a request not answered within this is answered 504.
        top_k: default number of classes in a /v1 answer (``?top_k=`` overrides it).
        retry_after_s: the ``Retry-After`` a 503 carries.
    """

    host: str = LOOPBACK
    port: int = 8000
    max_batch: int = 32  # enough to fill two cores with the course convnets; more only adds latency
    max_delay_ms: float = 2.0  # a fraction of one small-model call: batching must not cost a visible wait
    max_queue: int = 256
    workers: int = 1  # one batch at a time uses every intra-op thread; 2+ helps single-threaded sessions
    provider: Provider = Provider.auto
    threads: int | None = None
    spin: bool | None = False  # spinning intra-op threads would steal the cores the event loop and decoding need
    max_body_bytes: int = 16 * 1024**2  # a photo, not a video
    request_timeout_s: float = 30.0
    top_k: int = 5
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0..65535, got {self.port}")
        for name in ("max_batch", "max_queue", "workers", "max_body_bytes", "top_k", "retry_after_s"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.max_delay_ms < float("inf"):  # NaN too
            problems.append(f"max_delay_ms must be >= 0, got {self.max_delay_ms}")
        if not 0 < self.request_timeout_s < float("inf"):
            problems.append(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be >= 1, got {self.threads}")
        if problems:
            raise UsageError("serve: " + "; ".join(problems))

    @property
    def batching(self) -> bool:
        return self.max_batch > 1
