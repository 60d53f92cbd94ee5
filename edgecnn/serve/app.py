"""The Starlette application: /v1 (edgecnn's own JSON), /v2 (KServe V2 / Open Inference Protocol), /metrics.

Every route answers JSON errors ``{"error": message, "kind": kind}`` with a 4xx for what the client got
wrong and goes on serving everyone else; images are decoded and preprocessed in threads, model runs go
through each model's ``Batcher``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from edgecnn._version import __version__
from edgecnn.errors import EdgeCNNError, ImageError, InputError, NonFiniteOutputError, UsageError
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.engine import EngineSettings
from edgecnn.runtime.preprocess import check_batch, draft_size
from edgecnn.serve import protocol_v2 as v2
from edgecnn.serve.batching import Batcher, QueueFull
from edgecnn.serve.config import ServeConfig
from edgecnn.serve.images import ImageTooLargeError, is_small_image, load_image_bytes
from edgecnn.serve.metrics import Metrics

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger(__name__)


class HTTPProblem(Exception):
    """An error answer: status, kind (for metrics), message."""

    def __init__(self, status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, dict(headers or {})


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    classifier: Classifier
    batcher: Batcher


def public_metadata(data: Any) -> Any:
    """Metadata as clients see it: no local paths (keys naming a path are dropped, folders and absolute
    paths in values shortened to their last part): models exported by older versions recorded some."""
    if isinstance(data, dict):
        return {k: public_metadata(v) for k, v in data.items() if "path" not in str(k).lower()}
    if isinstance(data, list):
        return [public_metadata(v) for v in data]
    if isinstance(data, str):
        if data.startswith("folder:"):
            return "folder:" + Path(data.removeprefix("folder:")).name
        if data.startswith(("/", "~")) or (len(data) > 2 and data[1:3] in (":\\", ":/")):
            return Path(data).name
    return data


def model_name(path: str | Path) -> str:
    """A model's name in the URLs: its file name without ``.onnx``."""
    name = Path(path).name
    return name[: -len(".onnx")] if name.endswith(".onnx") else name


def load_models(models: Sequence[str | Path] | Mapping[str, Classifier], config: ServeConfig) -> dict[str, Classifier]:
    """Classifiers by name; every model is loaded (and its contract checked) before the server binds.

    Raises:
        UsageError: no model, or two models with the same name.
        ModelError, ProviderError: from ``Classifier``.
    """
    if isinstance(models, Mapping):
        loaded = dict(models)
    else:
        names = [model_name(p) for p in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UsageError(f"serve: several models are named {dupes}; a model's name is its file name")
        settings = None if config.spin is None else EngineSettings(threads=config.threads, spin=config.spin)
        loaded = {
            n: Classifier(p, config.provider, config.threads, settings=settings)
            for n, p in zip(names, models, strict=True)
        }
    if not loaded:
        raise UsageError("serve: give at least one .onnx model")
    return loaded


class Server:
    """Routes and state of one serving application."""

    def __init__(self, classifiers: Mapping[str, Classifier], config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.entries = {
            name: ModelEntry(
                name,
                clf,
                Batcher(
                    name,
                    clf,
                    max_batch=config.max_batch,
                    max_delay_ms=config.max_delay_ms,
                    max_queue=config.max_queue,
                    workers=config.workers,
                    metrics=self.metrics,
                ),
            )
            for name, clf in classifiers.items()
        }
        self.ready = False

    # -- lifecycle --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        for entry in self.entries.values():
            await entry.batcher.start()
        self.ready = True
        try:
            yield
        finally:  # uvicorn has let every request in flight finish; queued batches finish here
            self.ready = False
            await asyncio.gather(*(entry.batcher.stop() for entry in self.entries.values()))

    def routes(self) -> list[Route]:
        ep = self._endpoint
        return [
            Route("/v1/models", ep("/v1/models", self.list_models)),
            Route("/v1/models/{name}", ep("/v1/models/{name}", self.v1_metadata)),
            Route("/v1/classify", ep("/v1/classify", self.classify), methods=["POST"]),
            Route("/v1/models/{name}/classify", ep("/v1/models/{name}/classify", self.classify), methods=["POST"]),
            Route("/v2", ep("/v2", self.v2_server)),
            Route("/v2/health/live", ep("/v2/health/live", self.live)),
            Route("/v2/health/ready", ep("/v2/health/ready", self.v2_ready)),
            Route("/v2/models/{name}", ep("/v2/models/{name}", self.v2_metadata)),
            Route("/v2/models/{name}/ready", ep("/v2/models/{name}/ready", self.v2_model_ready)),
            Route("/v2/models/{name}/infer", ep("/v2/models/{name}/infer", self.v2_infer), methods=["POST"]),
            # one version per model ("1"): the versioned paths clients may use answer the same
            Route("/v2/models/{name}/versions/{version}", ep("/v2/models/{name}", self.v2_metadata)),
            Route("/v2/models/{name}/versions/{version}/ready", ep("/v2/models/{name}/ready", self.v2_model_ready)),
            Route(
                "/v2/models/{name}/versions/{version}/infer",
                ep("/v2/models/{name}/infer", self.v2_infer),
                methods=["POST"],
            ),
            Route("/metrics", ep("/metrics", self.render_metrics)),
        ]

    def _endpoint(self, route: str, handler: Handler) -> Handler:
        """Time the request, and turn every expected failure into a JSON 4xx/5xx answer."""

        @functools.wraps(handler)
        async def wrapped(request: Request) -> Response:
            start = time.perf_counter()
            counted = route != "/metrics"
            self.metrics.in_flight += counted
            try:
                response = await handler(request)
            except HTTPProblem as err:
                response = self._problem(err)
            except (ImageError, v2.ProtocolError, InputError) as err:
                response = self._problem(_classify_input_error(err))
            except NonFiniteOutputError as err:  # this input, not the model or the server: 422, stay healthy
                response = self._problem(HTTPProblem(422, "non_finite_output", str(err)))
            except EdgeCNNError as err:
                response = self._problem(HTTPProblem(500, "model_error", str(err)))
            except Exception as err:  # the request boundary: a bug answers this request, never the others
                log.exception("%s %s failed", request.method, request.url.path)
                response = self._problem(HTTPProblem(500, "internal", f"internal error ({type(err).__name__})"))
            finally:
                self.metrics.in_flight -= counted
            self.metrics.requests.observe(time.perf_counter() - start, route, str(response.status_code))
            return response

        return wrapped

    def _problem(self, err: HTTPProblem) -> Response:
        self.metrics.errors.inc(err.kind)
        return JSONResponse({"error": str(err), "kind": err.kind}, err.status, headers=err.headers)

    def _entry(self, request: Request) -> ModelEntry:
        version = request.path_params.get("version")
        if version is not None and version != "1":
            raise HTTPProblem(404, "unknown_model", f"model version {version!r} is not served (only '1')")
        name = request.path_params.get("name")
        if name is None:
            if len(self.entries) == 1:
                return next(iter(self.entries.values()))
            raise HTTPProblem(
                400,
                "ambiguous_model",
                f"several models are served ({', '.join(self.entries)}): use /v1/models/NAME/classify",
            )
        entry = self.entries.get(name)
        if entry is None:
            raise HTTPProblem(404, "unknown_model", f"no model named {name!r}; served: {', '.join(self.entries)}")
        return entry

    # -- request bodies ---------------------------------------------------------------------------
    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPProblem(
                413, "too_large", f"request body of {int(declared):,} bytes exceeds the limit of {limit:,}"
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPProblem(413, "too_large", f"request body exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        request._body = body  # Starlette's own cache: request.form() parses this instead of the spent stream
        return body

    async def _image_bytes(self, request: Request) -> bytes:
        body = await self._body(request)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=1, max_fields=16)
            except Exception as err:  # python-multipart's errors have no common base worth naming
                raise HTTPProblem(400, "bad_request", f"cannot parse the multipart form ({err})") from None
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPProblem(400, "bad_request", "multipart form has no file field named 'file'")
            return await upload.read()
        return body

    @contextlib.contextmanager
    def _arriving(self, entry: ModelEntry) -> Iterator[None]:
        """Count a request as on its way to ``entry``'s batcher while its body is read and decoded."""
        entry.batcher.arriving += 1
        try:
            yield
        finally:
            entry.batcher.arriving -= 1

    async def _answer(self, entry: ModelEntry, x: np.ndarray) -> np.ndarray:
        try:
            return await asyncio.wait_for(entry.batcher.submit(x), self.config.request_timeout_s)
        except QueueFull as err:
            raise HTTPProblem(
                503, "queue_full", f"{err}; retry later", {"Retry-After": str(self.config.retry_after_s)}
            ) from None
        except asyncio.TimeoutError:
            raise HTTPProblem(
                504, "timeout", f"no answer within {self.config.request_timeout_s:g} s (the server is overloaded)"
            ) from None

    # -- /v1 --------------------------------------------------------------------------------------
    async def classify(self, request: Request) -> Response:
        entry = self._entry(request)
        top_k = _int_param(request, "top_k", self.config.top_k)
        clf = entry.classifier
        with self._arriving(entry):
            data = await self._image_bytes(request)
            if is_small_image(data):  # decoding it costs less than handing it to a thread
                x = _preprocess_upload(clf, data)
            else:
                try:
                    x = await asyncio.wait_for(
                        run_in_threadpool(_preprocess_upload, clf, data), self.config.request_timeout_s
                    )
                except asyncio.TimeoutError:
                    raise HTTPProblem(504, "timeout", "decoding the upload took too long") from None
        probs = await self._answer(entry, x)
        return JSONResponse(clf.decode(probs, top_k)[0].to_dict())

    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"models": [self._describe(e) for e in self.entries.values()]})

    async def v1_metadata(self, request: Request) -> Response:
        return JSONResponse(self._describe(self._entry(request)))

    def _describe(self, entry: ModelEntry) -> dict[str, Any]:
        clf = entry.classifier
        return {
            "name": entry.name,
            "file": clf.path.name,  # never the server's local path
            "providers": clf.providers,
            "metadata": public_metadata(clf.metadata.to_dict()),
            "batching": {"max_batch": self.config.max_batch, "max_delay_ms": self.config.max_delay_ms},
        }

    # -- /v2 --------------------------------------------------------------------------------------
    async def v2_server(self, request: Request) -> Response:
        return JSONResponse({"name": "edgecnn", "version": __version__, "extensions": ["binary_tensor_data"]})

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def v2_ready(self, request: Request) -> Response:
        return JSONResponse({"ready": self.ready}, 200 if self.ready else 503)

    async def v2_metadata(self, request: Request) -> Response:
        entry = self._entry(request)
        meta, cert = entry.classifier.metadata, entry.classifier.certificate
        return JSONResponse(v2.model_metadata(entry.name, meta, certificate=cert))

    async def v2_model_ready(self, request: Request) -> Response:
        entry = self._entry(request)
        return JSONResponse({"name": entry.name, "ready": self.ready}, 200 if self.ready else 503)

    async def v2_infer(self, request: Request) -> Response:
        entry = self._entry(request)
        meta = entry.classifier.metadata
        with self._arriving(entry):
            body = await self._body(request)
            parsed = v2.parse_infer_request(body, request.headers.get(v2.HEADER_LENGTH), meta)
            x = check_batch(parsed.array, meta.input)  # NaN/Inf refused here, before it can share a batch
        probs = await self._answer(entry, x)
        content, headers = v2.encode_infer_response(entry.name, parsed, probs)
        return Response(content, headers=headers)

    async def render_metrics(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")


def _preprocess_upload(clf: Classifier, data: bytes) -> np.ndarray:
    """Bytes -> the model's input batch of one, exactly as ``Classifier.predict(path)`` prepares a file."""
    spec = clf.metadata.input
    if not spec.is_image:
        raise HTTPProblem(
            400,
            "not_an_image_model",
            f"this model takes {spec.layout.value} inputs of shape {list(spec.sample_shape)}, not images: "
            "send tensors to /v2/models/NAME/infer",
        )
    img = load_image_bytes(data, draft_size=draft_size(spec.height, spec.width, clf.metadata.preprocess))
    return clf.preprocess([img])


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise HTTPProblem(400, "bad_request", f"?{name}= must be a positive integer, got {raw!r}")
    return int(raw)


def _classify_input_error(err: Exception) -> HTTPProblem:
    if isinstance(err, ImageTooLargeError):
        return HTTPProblem(422, "decompression_bomb", str(err))
    if isinstance(err, ImageError):
        return HTTPProblem(400, "bad_image", str(err))
    if isinstance(err, v2.ProtocolError):
        return HTTPProblem(400, "bad_tensor", str(err))
    return HTTPProblem(400, "bad_input", str(err))


def build_app(models: Sequence[str | Path] | Mapping[str, Classifier], config: ServeConfig | None = None) -> Starlette:
    """The ASGI application serving ``models`` (paths, or Classifiers by name)."""
    config = config or ServeConfig()
    server = Server(load_models(models, config), config)
    app = Starlette(routes=server.routes(), lifespan=server.lifespan)
    app.state.server = server
    return app
