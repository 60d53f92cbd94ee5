"""The example app, driven for real over loopback."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import write_png

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def server(tiny_onnx: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("http_classifier", ROOT / "examples" / "http_classifier.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    srv = module.make_server(str(tiny_onnx), "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url: str, data: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    req = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_classifies_an_upload(server: str, tmp_path: Path) -> None:
    png = write_png(tmp_path / "a.png", size=(40, 30)).read_bytes()
    status, body = post(server + "/classify", png)
    assert status == 200 and body["label"] in ("cat", "dog", "bird") and len(body["top_k"]) == 3
    with urllib.request.urlopen(server + "/health", timeout=10) as resp:
        assert json.loads(resp.read())["labels"] == ["cat", "dog", "bird"]


def test_rejects_a_non_image(server: str) -> None:
    status, body = post(server + "/classify", b"definitely not an image")
    assert status == 400 and "cannot classify" in body["error"]


def test_concurrent_requests(server: str, tmp_path: Path) -> None:
    png = write_png(tmp_path / "b.png").read_bytes()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(post(server + "/classify", png)[0])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8
