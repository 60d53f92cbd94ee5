"""`edgecnn serve` under load: dynamic batching on vs off, side by side in one run, on loopback.

    python benchmarks/serve_load.py [--duration 3] [--clients 1,8,32,128] [--models DIR]

C concurrent clients (asyncio streams, one keep-alive HTTP/1.1 connection each) POST an image to /v1/classify back
to back for ``--duration`` seconds per point; the servers (one per mode, started once per model) are
real `edgecnn serve` subprocesses. Reported per point: requests/s, p50/p95/p99 latency, errors, mean batch
size (from the server's /metrics), the mean model-run time. Modes: ``on`` (--max-batch 32 --max-delay-ms 2),
``off`` (--max-batch 1, one run at a time) and ``off-w2`` (--max-batch 1 --workers 2: two runs at once, like
a threaded server). The load generator shares the machine with the server: both are in the numbers.

Models (made once into ``--models``, default runs/serve_load): mnist-cnn trained 1 epoch on
mnist5k and catsdogs-cnn trained 1 epoch on a generated folder, exported and quantized to static INT8
with edgecnn's library (accuracy does not matter for speed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from edgecnn.data.synthetic import write_tinted_folder

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "on": ["--max-batch", "32", "--max-delay-ms", "2"],
    "off": ["--max-batch", "1"],
    "off-w2": ["--max-batch", "1", "--workers", "2"],
}


def prepare_models(folder: Path) -> dict[str, Path]:
    """mnist-cnn and catsdogs-cnn INT8, trained briefly with edgecnn's library (cached in ``folder``)."""
    out = {"mnist-cnn": folder / "mnist-cnn.int8.onnx", "catsdogs-cnn": folder / "catsdogs-cnn.int8.onnx"}
    if all(p.is_file() for p in out.values()):
        return out
    from edgecnn.export import export_keras
    from edgecnn.quantize import QuantizeConfig, quantize
    from edgecnn.train import TrainConfig, train

    folder.mkdir(parents=True, exist_ok=True)
    cats = write_tinted_folder(folder / "cats", per_class=24)
    for arch, data, calib in (
        ("mnist-cnn", "mnist5k", ROOT / "calibration" / "mnist"),
        ("catsdogs-cnn", f"folder:{cats}", cats),
    ):
        trained = train(arch, folder / "runs", TrainConfig(data=data, epochs=1, verbose=0))
        fp32 = folder / f"{arch}.onnx"
        export_keras(trained.model_path, fp32)
        quantize(fp32, out[arch], QuantizeConfig.int8(), calibration=calib, measure_speed=False)
    return out


def payload(arch: str) -> bytes:
    """A PNG digit for mnist-cnn; a 180x180 JPEG photo-like image for catsdogs-cnn."""
    import io

    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    if arch == "mnist-cnn":
        from edgecnn.data import load_source

        Image.fromarray(load_source("mnist5k", split="test").x[0].squeeze()).save(buf, "PNG")
    else:
        Image.fromarray(rng.integers(0, 256, (180, 180, 3), np.uint8)).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(model: Path, options: list[str], log: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgecnn",
                "serve",
                str(model),
                "--port",
                str(port),
                "--max-queue",
                "4096",
                *options,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/v2/health/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def scrape(url: str) -> dict[str, float]:
    """Sums and counts of the batch-size and batch-duration histograms."""
    wanted = ("edgecnn_batch_size_sum", "edgecnn_batch_size_count", "edgecnn_batch_duration_seconds_sum")
    values = dict.fromkeys(wanted, 0.0)
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in values:
            values[name] += float(line.split()[-1])
    return values


async def load(url: str, body: bytes, clients: int, duration: float) -> tuple[list[float], dict[str, int], float]:
    """``clients`` keep-alive connections posting ``body`` back to back until ``duration`` has passed.

    A minimal HTTP/1.1 client on asyncio streams: httpx's client cost more CPU per request than the server on
    these 2 shared cores, which measured the client, not the server. Returns latencies (s), errors, wall time.
    """
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /v1/classify HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = time.perf_counter()
    stop = start + duration

    async def one_client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    writer.write(request)
                    await writer.drain()
                    status, length = _status_and_length(await reader.readuntil(b"\r\n\r\n"))
                    await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                    errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - start


def _status_and_length(head: bytes) -> tuple[int, int]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return status, int(value.strip())
    raise ValueError("response without Content-Length")


def measure(url: str, body: bytes, clients: int, duration: float) -> dict[str, object]:
    asyncio.run(load(url, body, clients, min(1.0, duration)))  # warm-up: connections, sessions, caches
    before = scrape(url)
    lat, errors, wall = asyncio.run(load(url, body, clients, duration))
    after = scrape(url)
    runs = after["edgecnn_batch_size_count"] - before["edgecnn_batch_size_count"]
    samples = after["edgecnn_batch_size_sum"] - before["edgecnn_batch_size_sum"]
    run_s = after["edgecnn_batch_duration_seconds_sum"] - before["edgecnn_batch_duration_seconds_sum"]
    ms = np.asarray(lat) * 1000 if lat else np.zeros(1)
    return {
        "clients": clients,
        "requests": len(lat),
        "requests_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "errors": errors,
        "mean_batch": round(samples / runs, 2) if runs else None,
        "mean_run_ms": round(run_s / runs * 1000, 2) if runs else None,
    }


def render(result: dict) -> str:  # type: ignore[type-arg]
    env = result["environment"]
    lines = [
        "# edgecnn serve under load (loopback)",
        "",
        f"{env['cpu']}, {env['cpus']} vCPUs, shared and loaded (other jobs ran beside it; 1-minute load average "
        f"{env['load_average_1min']['start']} at the start, {env['load_average_1min']['end']} at the end); the "
        "load generator (asyncio streams, closed loop) runs on the same 2 cores as the server. "
        f"onnxruntime {env['onnxruntime']}, {result['settings']['duration_s']} s per point after a warm-up.",
        "",
        "| model | clients | mode | req/s | p50 ms | p95 ms | p99 ms | errors | mean batch | run ms |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["points"]:
        errs = sum(row["errors"].values())
        lines.append(
            f"| {row['model']} | {row['clients']} | {row['mode']} | {row['requests_per_s']} | {row['p50_ms']} | "
            f"{row['p95_ms']} | {row['p99_ms']} | {errs} | {row['mean_batch']} | {row['mean_run_ms']} |"
        )
    lines += ["", "Ratios, batching on / off (requests/s):", ""]
    for key, ratio in result["ratios"].items():
        lines.append(f"- {key}: {ratio}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--models", type=Path, default=ROOT / "runs" / "serve_load")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    import onnxruntime

    from edgecnn.runtime.environment import cpu_model

    clients = [int(c) for c in args.clients.split(",")]
    modes = args.modes.split(",")
    models = prepare_models(args.models)
    load_start = round(os.getloadavg()[0], 2)
    points = []
    for arch, model in models.items():
        body = payload(arch)
        with contextlib.ExitStack() as stack:
            urls = {m: stack.enter_context(server(model, MODES[m], args.models / f"{arch}-{m}.log")) for m in modes}
            for url in urls.values():  # every server warm (sessions, thread pools, caches) before the first point
                asyncio.run(load(url, body, 8, 2.0))
            for c in clients:  # modes interleaved per client count: the machine's load drifts
                for m in modes:
                    row = {"model": f"{arch} INT8", "mode": m, **measure(urls[m], body, c, args.duration)}
                    print(json.dumps(row), flush=True)
                    points.append(row)
    ratios = {}
    for arch in models:
        for c in clients:
            by = {p["mode"]: p for p in points if p["model"] == f"{arch} INT8" and p["clients"] == c}
            if "on" in by and "off" in by and by["off"]["requests_per_s"]:
                ratios[f"{arch} INT8, {c} clients"] = round(by["on"]["requests_per_s"] / by["off"]["requests_per_s"], 2)
    result = {
        "environment": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__,
            "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        },
        "settings": {"duration_s": args.duration, "modes": {m: MODES[m] for m in modes}, "clients": clients},
        "points": points,
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
