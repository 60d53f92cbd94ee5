"""``edgecnn serve``: the runtime as an HTTP inference server (the ``[serve]`` extra: Starlette + uvicorn).

Endpoints: ``POST /v1/classify`` (an image in, ``Prediction.to_dict()`` out), the KServe V2 / Open
Inference Protocol under ``/v2`` (so Triton, OVMS and MLServer clients work unchanged), ``/metrics``
(Prometheus). Concurrent requests are batched dynamically. Example::

    from edgecnn.serve import ServeConfig, serve

    serve(["exported/mnist-cnn.onnx"], ServeConfig(port=8000, max_batch=32, max_delay_ms=2))

This package imports Starlette and uvicorn only when an app is built, so ``import edgecnn.serve`` is light.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn._optional import require
from edgecnn.serve.config import ServeConfig

if TYPE_CHECKING:
    from edgecnn.runtime.classifier import Classifier


def _require_extra() -> None:
    for module in ("starlette", "uvicorn", "python_multipart"):
        require(module, extra="serve")


def build_app(models: Sequence[str | Path] | Mapping[str, Classifier], config: ServeConfig | None = None) -> Any:
    """The ASGI (Starlette) application serving ``models``; run it with any ASGI server.

    Raises:
        MissingDependencyError: the ``[serve]`` extra is not installed.
        UsageError, ModelError, ProviderError: no model, duplicate names, a model that cannot load.
    """
    _require_extra()
    from edgecnn.serve.app import build_app as _build

    return _build(models, config)


def serve(
    models: Sequence[str | Path] | Mapping[str, Classifier],
    config: ServeConfig | None = None,
    *,
    log_level: str = "info",
) -> None:
    """Serve ``models`` with uvicorn until SIGINT/SIGTERM; requests in flight and queued batches finish first."""
    config = config or ServeConfig()
    app = build_app(models, config)
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)  # a drained SIGTERM is a clean stop: exit 0, as service managers expect

    _Server(
        uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level, lifespan="on", access_log=False)
    ).run()


__all__ = ["ServeConfig", "build_app", "serve"]
