"""`edgecnn serve` driven for real over loopback: /v1 answers equal Classifier.predict, the real tritonclient
speaks V2 to it, hostile uploads get a 4xx while the server keeps serving, concurrent requests share model
runs, a full queue answers 503, SIGTERM drains the requests in flight and exits 0."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from _hostile import hostile_folder
from _servers import RunningServer, running_server
from conftest import make_tiny_onnx, write_png

from edgecnn import Classifier

GOOD = (
    "mode_L.png",
    "mode_P.png",
    "mode_RGBA.png",
    "mode_CMYK.tiff",
    "mode_I16.tiff",
    "photo.jpg",
    "exif_rotated.jpg",
    "animated.gif",
)
HOSTILE = {"zero.png": "empty", "truncated.jpg": "truncated", "text.png": "not an image", "bomb.png": "bomb"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def models(workdir: Path) -> dict[str, Path]:
    return {
        "tiny": make_tiny_onnx(workdir / "tiny.onnx"),
        "tiny-l": make_tiny_onnx(workdir / "tiny-l.onnx", labels=tuple("abcd"), size=12, channels=1, seed=3),
    }


@pytest.fixture(scope="module")
def photos(workdir: Path) -> Path:
    root = workdir / "photos"
    hostile_folder(root)
    return root


@pytest.fixture(scope="module")
def server(models: dict[str, Path], workdir: Path) -> Iterator[RunningServer]:
    with running_server(
        list(models.values()), "--max-batch", "64", "--max-delay-ms", "25", "--max-body-mb", "1", log_dir=workdir
    ) as srv:
        yield srv


def classify(server: RunningServer, model: str, data: bytes, **kw: object) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}/classify", content=data, timeout=30, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["tiny", "tiny-l"])
def test_classify_equals_predict(server: RunningServer, models: dict[str, Path], photos: Path, model: str) -> None:
    clf = Classifier(models[model])
    for name in GOOD:
        want = clf.predict(photos / name).to_dict()
        raw = classify(server, model, (photos / name).read_bytes())
        assert raw.status_code == 200, (name, raw.text)
        assert raw.json() == want, name
        form = httpx.post(
            f"{server.url}/v1/models/{model}/classify",
            files={"file": (name, (photos / name).read_bytes())},
            timeout=30,
        )
        assert form.json() == want, name


def test_top_k_and_model_routes(server: RunningServer, photos: Path) -> None:
    body = (photos / "photo.jpg").read_bytes()
    assert len(classify(server, "tiny", body, params={"top_k": 1}).json()["top_k"]) == 1
    ambiguous = httpx.post(server.url + "/v1/classify", content=body, timeout=30)
    assert ambiguous.status_code == 400 and "tiny-l" in ambiguous.json()["error"]
    missing = classify(server, "nope", body)
    assert missing.status_code == 404 and "no model named 'nope'" in missing.json()["error"]
    assert httpx.get(server.url + "/v2/models/nope", timeout=10).status_code == 404
    meta = httpx.get(server.url + "/v1/models/tiny-l", timeout=10).json()
    assert meta["metadata"]["labels"] == list("abcd") and meta["metadata"]["input"]["channels"] == 1


def test_tritonclient_round_trip(server: RunningServer, models: dict[str, Path]) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
    meta = client.get_model_metadata("tiny")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8, 3]}]
    assert meta["outputs"][0]["shape"] == [-1, 3]
    clf = Classifier(models["tiny"])
    x = clf.preprocess([np.random.default_rng(s).integers(0, 256, (20, 30, 3), np.uint8) for s in range(5)])
    for binary in (True, False):
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        out = triton.InferRequestedOutput("probabilities", binary_data=binary)
        result = client.infer("tiny", [tensor], outputs=[out], request_id="r1")
        np.testing.assert_allclose(result.as_numpy("probabilities"), clf.predict_proba(x), rtol=0, atol=1e-7)
        assert result.get_response()["id"] == "r1"
    result = client.infer("tiny", [tensor])  # no outputs named: all of them, binary
    assert result.as_numpy("probabilities").shape == (5, 3)
    versioned = client.infer("tiny", [tensor], model_version="1")
    np.testing.assert_allclose(versioned.as_numpy("probabilities"), clf.predict_proba(x), rtol=0, atol=1e-7)
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    client.close()


def test_v2_json_errors_name_the_problem(server: RunningServer) -> None:
    url = server.url + "/v2/models/tiny/infer"

    def infer(tensor: dict) -> httpx.Response:  # type: ignore[type-arg]
        return httpx.post(url, json={"inputs": [tensor]}, timeout=10)

    good = {"name": "input", "datatype": "FP32", "shape": [1, 8, 8, 3], "data": [0.5] * 192}
    assert infer(good).status_code == 200
    cases = {
        "shape [1, 3, 8, 8]": dict(good, shape=[1, 3, 8, 8]),
        "datatype 'FP64'": dict(good, datatype="FP64"),
        "unknown input 'x'": dict(good, name="x"),
        "has 3 values": dict(good, data=[1, 2, 3]),
        "NaN": dict(good, data=["NaN"] * 192),
    }
    for fragment, tensor in cases.items():
        r = infer(tensor)
        assert r.status_code == 400, (fragment, r.text)
        assert fragment in r.json()["error"], (fragment, r.json())
    r = httpx.post(url, content=b"{not json", timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    assert infer(good).status_code == 200


def test_hostile_uploads_are_4xx_and_the_server_goes_on(server: RunningServer, photos: Path) -> None:
    for name, why in HOSTILE.items():
        r = classify(server, "tiny", (photos / name).read_bytes())
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        assert r.json()["error"].startswith("upload:"), (name, why, r.json())
    assert classify(server, "tiny", (photos / "bomb.png").read_bytes()).json()["kind"] == "decompression_bomb"
    too_big = classify(server, "tiny", b"\x89PNG" + bytes(2 * 1024**2))
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    assert httpx.get(server.url + "/v2/health/ready", timeout=10).status_code == 200
    assert classify(server, "tiny", (photos / "photo.jpg").read_bytes()).status_code == 200
    assert 'edgecnn_errors_total{kind="bad_image"}' in server.metrics()


def test_concurrent_requests_share_model_runs(server: RunningServer, models: dict[str, Path], workdir: Path) -> None:
    clf = Classifier(models["tiny"])
    uploads = [write_png(workdir / "conc" / f"{i}.png", size=(16 + i, 12), seed=i) for i in range(24)]
    before = server.runs("tiny")
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(24) as pool:
        start = threading.Barrier(24)

        def send(path: Path) -> dict:  # type: ignore[type-arg]
            start.wait()
            r = client.post(f"{server.url}/v1/models/tiny/classify", content=path.read_bytes())
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        answers = list(pool.map(send, uploads))
    runs = server.runs("tiny") - before
    assert answers == [clf.predict(p).to_dict() for p in uploads]
    assert 1 <= runs < len(uploads), f"{len(uploads)} concurrent requests took {runs} model runs"


def test_metrics_exposition(server: RunningServer) -> None:
    text = server.metrics()
    for series in ("edgecnn_request_duration_seconds_bucket", "edgecnn_batch_size_bucket", "edgecnn_queue_depth"):
        assert f"# TYPE {series.removesuffix('_bucket')}" in text, series
    assert 'route="/v1/models/{name}/classify",status="200"' in text


def test_missing_extra_names_the_pip_line(tmp_path: Path, models: dict[str, Path]) -> None:
    """Without starlette, `edgecnn serve` fails in one line naming the extra (exit 3)."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nclass _B:\n    def find_spec(self, name, *a):\n"
        "        if name.split('.')[0] == 'starlette':\n            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, _B())\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{root}")
    out = subprocess.run(
        [sys.executable, "-m", "edgecnn", "serve", str(models["tiny"])], capture_output=True, text=True, env=env
    )
    assert out.returncode == 3, out.stderr
    assert "pip install 'edgecnn[serve]'" in out.stderr and len(out.stderr.strip().splitlines()) == 1


# -- requests held in flight (a gate the test opens): the queue limit, the SIGTERM drain, timeouts ----
@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """Closed (the file exists) until the test removes it: model runs wait, requests stay in flight."""
    path = tmp_path / "gate"
    path.touch()
    yield path
    path.unlink(missing_ok=True)  # never leave a server's batch waiting when a test fails


def _until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.005)


def _burst(url: str, n: int, body: bytes) -> list[Future[httpx.Response]]:
    """``n`` POSTs started at once; their futures (the pool shuts down when they are all answered)."""
    client = httpx.Client(timeout=60)
    pool = ThreadPoolExecutor(n)
    futures = [pool.submit(client.post, url, content=body) for _ in range(n)]
    pool.shutdown(wait=False)
    return futures


def test_full_queue_answers_503_at_once(models: dict[str, Path], workdir: Path, gate: Path) -> None:
    png = write_png(workdir / "q.png").read_bytes()
    url = "/v1/classify"
    with running_server([models["tiny"]], "--max-batch", "1", "--max-queue", "2", log_dir=workdir, gate=gate) as srv:
        depth = 'edgecnn_queue_depth{model="tiny"}'
        running = _burst(srv.url + url, 1, png)  # one batch of one, held at the gate
        _until(lambda: srv.gauge("edgecnn_requests_in_flight") == 1 and srv.gauge(depth) == 0, "one batch running")
        queued = _burst(srv.url + url, 2, png)
        _until(lambda: srv.gauge(depth) == 2, "two samples queued behind it")
        refused = [f.result() for f in _burst(srv.url + url, 9, png)]  # answered while the gate is still closed
        assert [r.status_code for r in refused] == [503] * 9, [r.text for r in refused]
        assert refused[0].headers["Retry-After"] == "1" and "limit 2" in refused[0].json()["error"]
        assert not any(f.done() for f in running + queued)
        gate.unlink()
        assert [f.result().status_code for f in running + queued] == [200] * 3
        assert httpx.post(srv.url + url, content=png, timeout=60).status_code == 200
        assert 'edgecnn_errors_total{kind="queue_full"} 9' in srv.metrics()


def test_sigterm_drains_requests_in_flight_then_exits_0(models: dict[str, Path], workdir: Path, gate: Path) -> None:
    png = write_png(workdir / "s.png").read_bytes()
    want = Classifier(models["tiny"]).predict(workdir / "s.png").to_dict()
    with running_server([models["tiny"]], "--max-batch", "2", log_dir=workdir, gate=gate) as srv:
        burst = _burst(srv.url + "/v1/classify", 6, png)
        _until(lambda: srv.gauge("edgecnn_requests_in_flight") == 6, "six requests in flight")
        srv.process.send_signal(signal.SIGTERM)
        _until(lambda: "Shutting down" in srv.log.read_text(), "uvicorn begins its shutdown")
        assert not any(f.done() for f in burst)  # shutdown began with all six in flight
        gate.unlink()
        results = [f.result() for f in burst]
        assert srv.process.wait(60) == 0, srv.log.read_text()
    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    assert all(r.json() == want for r in results)
    log = srv.log.read_text()
    assert "Application shutdown complete" in log, log


def test_a_request_past_its_timeout_is_504_and_the_server_goes_on(
    models: dict[str, Path], workdir: Path, gate: Path
) -> None:
    png = write_png(workdir / "t.png").read_bytes()
    with running_server([models["tiny"]], "--timeout", "0.05", log_dir=workdir, gate=gate) as srv:
        answers = [f.result() for f in _burst(srv.url + "/v1/classify", 6, png)]  # held past their timeout
        assert [r.status_code for r in answers] == [504] * 6, [r.text for r in answers]
        assert {r.json()["kind"] for r in answers} == {"timeout"}
        gate.unlink()
        assert httpx.get(srv.url + "/v2/health/ready", timeout=10).status_code == 200
        assert httpx.post(srv.url + "/v1/classify", content=png, timeout=60).status_code == 200
        assert 'edgecnn_errors_total{kind="timeout"} 6' in srv.metrics()


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_api_builds_an_app_without_binding(models: dict[str, Path]) -> None:
    from starlette.testclient import TestClient

    from edgecnn.serve import ServeConfig, build_app

    with TestClient(build_app([models["tiny"]], ServeConfig(max_batch=4))) as client:
        r = client.post(
            "/v2/models/tiny/infer",
            content=json.dumps(
                {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 8, 8, 3], "data": [0.0] * 384}]}
            ),
        )
        assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [2, 3]


def test_v2_binary_tensor_size_is_checked(models: dict[str, Path]) -> None:
    from edgecnn.serve.protocol_v2 import HEADER_LENGTH, ProtocolError, parse_infer_request

    meta = Classifier(models["tiny"]).metadata
    header = json.dumps(
        {
            "inputs": [
                {"name": "input", "datatype": "FP32", "shape": [1, 8, 8, 3], "parameters": {"binary_data_size": 768}}
            ]
        }
    ).encode()
    x = np.arange(192, dtype="<f4")
    parsed = parse_infer_request(header + x.tobytes(), str(len(header)), meta)
    np.testing.assert_array_equal(parsed.array.reshape(-1), x)
    with pytest.raises(ProtocolError, match="needs 768"):
        parse_infer_request(header + x.tobytes()[:-4], str(len(header)), meta)
    with pytest.raises(ProtocolError, match=HEADER_LENGTH):
        parse_infer_request(header, "99999", meta)
