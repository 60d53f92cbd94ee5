"""A tiny image-classification web service embedding the edgecnn runtime (standard library only).

    python examples/http_classifier.py exported/mnist-cnn.onnx --port 8080
    curl --data-binary @digit.png http://127.0.0.1:8080/classify

POST the raw bytes of an image to /classify; the answer is JSON: label, score, top-k. One Classifier
is shared by every request thread (it is thread-safe). Bad images get HTTP 400 with the reason.

This file shows how few lines embedding the runtime takes. To serve models for real, use
``edgecnn serve MODEL.onnx`` (``pip install 'edgecnn[serve]'``): the same answers at /v1/classify, plus
dynamic batching, a bounded queue (503), body limits and timeouts, the KServe V2 protocol that Triton,
OVMS and MLServer clients speak, Prometheus metrics and a graceful SIGTERM (README, "Serve over HTTP").
"""

from __future__ import annotations

import argparse
import io
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, UnidentifiedImageError

from edgecnn import Classifier, EdgeCNNError

MAX_UPLOAD = 16 * 1024 * 1024


def make_server(model: str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (0: a free port) answering POST /classify."""
    clf = Classifier(model)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, payload: dict) -> None:  # type: ignore[type-arg]
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, {"model": str(clf.path), "labels": list(clf.labels), "providers": clf.providers})
            else:
                self._reply(404, {"error": "POST an image to /classify"})

        def do_POST(self) -> None:
            if self.path != "/classify":
                self._reply(404, {"error": "POST an image to /classify"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_UPLOAD:
                self._reply(400, {"error": f"send 1..{MAX_UPLOAD} bytes of image data"})
                return
            try:
                with Image.open(io.BytesIO(self.rfile.read(length))) as img:
                    img.load()
                    pred = clf.predict(img.copy())
            except (UnidentifiedImageError, OSError, EdgeCNNError, ValueError) as err:
                self._reply(400, {"error": f"cannot classify this upload: {err}"})
                return
            self._reply(200, pred.to_dict())

        def log_message(self, *_args: object) -> None:  # keep the example quiet
            return

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = make_server(args.model, args.host, args.port)
    print(f"serving {args.model} on http://{args.host}:{server.server_address[1]}/classify")
    server.serve_forever()


if __name__ == "__main__":
    main()
