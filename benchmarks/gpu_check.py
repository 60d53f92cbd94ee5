"""The GPU check (issue #13): prove ``--provider cuda``, ``Classifier(provider="cuda")`` and the CUDA parity bars
on a real GPU, from ONNX models and golden outputs prepared on the CPU machine (``gpu_prepare.py``).

    scripts/gpu_check.sh                                  # on the GPU machine (installs the wheel, sets paths)
    python benchmarks/gpu_check.py --provider cpu         # dry run on any CPU machine
    python benchmarks/gpu_check.py --render runs/gpu_check/gpu_check.json   # PNG later, where matplotlib is

Steps, each a pass/fail line in the summary (exit 4 if any fails, 3 if the models are missing):

1. ``edgecnn doctor --gpu``: exit 0 on the GPU machine (exit 3 expected in the CPU dry run).
2. the ``gpu``-marked tests with ``EDGECNN_REQUIRE_GPU=1`` (a skip is a failure): all pass, none skipped.
3. parity, per model and variant, of the provider under test against the CPU provider on the same machine
   (and against the golden Keras / CPU outputs recorded on the CPU machine): FP32 max abs diff ≤ 1e-3 and
   100% agreement (also against Keras); FP16 ≤ 1e-2 and ≥ 99.5% against FP32 on the CPU; INT8 ≥ 98%
   agreement; the session really runs on the provider asked for.
4. ``edgecnn bench --provider cuda --batch 1,8,32`` of each model's three variants, beside the same on the
   CPU (JSON/Markdown/PNG per run): exit 0, the provider really used, and the INT8-on-CUDA warning present
   exactly for INT8 on CUDA. On the GPU the bench's rows are device latency with IO binding (inputs bound
   on the GPU once, host↔device copies excluded) plus ``(with host copies)`` rows (copies included).
5. silent fallback: in subprocesses where the CUDA provider cannot work (CUDA libraries hidden, cuDNN
   hidden, no visible device), ``Classifier(m, provider="cuda")`` raises ``ProviderError`` and ``edgecnn
   bench m --provider cuda`` exits 3 — never a CPU run. In the dry run: the CPU-only onnxruntime, and with
   ``--fallback-python``/``--fallback-pythonpath`` the real onnxruntime-gpu wheel on a machine without CUDA.

Results: ``OUT/gpu_check.{json,md,png}`` (``--out``, else ``$OUT``, else ``runs/gpu_check``) and the bench
reports under ``OUT/bench/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_MODELS = ROOT / ".gpu_check" / "models"
VARIANTS = ("fp32", "fp16", "int8")
ORT_NAME = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}

# the child of the fallback check: what Classifier(provider="cuda") does in an environment where CUDA cannot work
FALLBACK_CHILD = r"""
import json, sys, warnings
out = {}
try:
    import onnxruntime as ort
    out["onnxruntime"] = f"{ort.__version__} ({ort.__file__})"
    out["available"] = ort.get_available_providers()
    from edgecnn import Classifier
    from edgecnn.errors import ProviderError
    try:
        clf = Classifier(sys.argv[1], provider="cuda", tuning=False)
        out["outcome"] = "session"
        out["providers"] = clf.providers
        try:
            import numpy as np
            clf.predict_proba(np.zeros((1, *clf.metadata.input.sample_shape), np.float32))
            out["predicted"] = True
        except Exception as err:
            out["predicted"] = False
            out["predict_error"] = f"{type(err).__name__}: {str(err)[:300]}"
    except ProviderError as err:
        out["outcome"] = "ProviderError"
        out["message"] = str(err)[:600]
    except Exception as err:
        out["outcome"] = type(err).__name__
        out["message"] = str(err)[:600]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loose = Classifier(sys.argv[1], provider="cuda", tuning=False, allow_fallback=True)
            out["allow_fallback"] = {"providers": loose.providers, "warnings": [str(w.message)[:300] for w in caught]}
        except Exception as err:
            out["allow_fallback"] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
except Exception as err:
    out["outcome"] = "child crashed: " + type(err).__name__
    out["message"] = str(err)[:600]
print("@@" + json.dumps(out))
"""


class Check:
    """The list of pass/fail lines the summary prints."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, step: str, name: str, passed: bool | None, detail: str = "") -> bool | None:
        self.items.append({"step": step, "check": name, "passed": passed, "detail": detail})
        mark = {True: "PASS", False: "FAIL", None: "info"}[passed]
        print(f"  [{mark}] {step}: {name}" + (f" — {detail}" if detail else ""), flush=True)
        return passed

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i["passed"] is False]


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
        rc, text = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as err:
        rc, text = 124, f"timed out after {timeout} s: {err}"
    return {"cmd": shlex.join(cmd), "rc": rc, "output": text, "seconds": round(time.perf_counter() - t0, 2)}


def tail(text: str, n: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def gpu_info() -> dict[str, Any]:
    if not shutil.which("nvidia-smi"):
        return {"nvidia_smi": None}
    q = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], timeout=60)
    return {"nvidia_smi": q["output"].strip()}


# -- 1. doctor ------------------------------------------------------------------------------------------------
def check_doctor(provider: str, checks: Check, results: dict[str, Any]) -> None:
    """``edgecnn doctor --gpu``: exit 0 on the GPU machine, 3 in the CPU dry run.

    One problem it reports is an artefact of this check's layout, not of the machine: the GPU wheel is
    installed in its own folder first on PYTHONPATH, so ``import onnxruntime`` loads the GPU build while
    the machine's CPU ``onnxruntime`` is still visible to ``importlib.metadata`` ("both … installed").
    That one is excused when the imported onnxruntime really is the GPU build; every other problem counts.
    """
    import onnxruntime as ort

    from edgecnn.runtime.environment import describe_environment

    r = run([sys.executable, "-m", "edgecnn", "doctor", "--gpu"], timeout=120)
    problems = describe_environment()["gpu_problems"]
    gpu_build = ort.get_device() == "GPU" and ORT_NAME["cuda"] in ort.get_available_providers()
    layout = [p for p in problems if p.startswith("both onnxruntime and onnxruntime-gpu") and gpu_build]
    rest = [p for p in problems if p not in layout]
    results["doctor"] = {
        "cmd": r["cmd"],
        "rc": r["rc"],
        "output": tail(r["output"], 40),
        "problems": problems,
        "excused_layout_problems": layout,
    }
    if provider == "cuda":
        ok = r["rc"] == 0 or (r["rc"] == 3 and not rest)
        detail = f"exit {r['rc']}; problems: {problems or 'none'}" + (f"; excused (layout): {layout}" if layout else "")
        checks.add("doctor", "`edgecnn doctor --gpu` finds nothing wrong with a working GPU setup", ok, detail[:500])
    else:
        checks.add(
            "doctor",
            "`edgecnn doctor --gpu` exits 3 without a GPU, saying why",
            r["rc"] == 3 and bool(problems),
            f"exit {r['rc']}; problems: {problems}"[:500],
        )


# -- 2. gpu-marked tests ------------------------------------------------------------------------------------------
def gpu_test_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py") if "mark.gpu" in p.read_text())


def _junit(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    keys = ("tests", "failures", "errors", "skipped")
    return {k: int(suite.get(k, 0)) for k in keys} if suite is not None else dict.fromkeys(keys, -1)


def check_tests(provider: str, out: Path, checks: Check, results: dict[str, Any]) -> None:
    files = gpu_test_files()
    results["tests"] = {"files": files, "runs": []}
    if not files:
        checks.add("tests", "gpu-marked tests exist", False, "no test file holds a gpu mark")
        return
    base = [sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q", *files]
    runs = [("required", {"EDGECNN_REQUIRE_GPU": "1"})]
    if provider == "cpu":  # dry run: they skip without CUDA, and the switch turns the skips into a failure
        runs = [("skipped without CUDA", {}), *runs]
    for label, extra in runs:
        xml = out / f"pytest-gpu-{label.split()[0]}.xml"
        env = {**os.environ, **extra}
        xml.unlink(missing_ok=True)
        r = run([*base, f"--junitxml={xml}"], env=env, timeout=300)
        counts = _junit(xml) if xml.exists() else {"tests": -1, "failures": -1, "errors": -1, "skipped": -1}
        results["tests"]["runs"].append(
            {"label": label, "cmd": r["cmd"], "env": extra, "rc": r["rc"], **counts, "output": tail(r["output"], 25)}
        )
        summary = (
            f"exit {r['rc']}: {counts['tests']} tests, {counts['skipped']} skipped, "
            f"{counts['failures']} failed, {counts['errors']} errors"
        )
        if provider == "cuda":
            ok = r["rc"] == 0 and counts["tests"] > 0 and counts["skipped"] == 0 and counts["failures"] == 0
            checks.add("tests", "gpu-marked tests pass on the GPU, none skipped (EDGECNN_REQUIRE_GPU=1)", ok, summary)
        elif label == "required":
            # the switch is another change (tests/conftest.py): recorded, gated only once it exists
            checks.add(
                "tests",
                "EDGECNN_REQUIRE_GPU=1 turns the skips into a failure without CUDA",
                (r["rc"] != 0) if "EDGECNN_REQUIRE_GPU" in (ROOT / "tests" / "conftest.py").read_text() else None,
                summary if r["rc"] != 0 else summary + " (switch not in tests/conftest.py yet)",
            )
        else:
            ok = r["rc"] == 0 and counts["tests"] > 0 and counts["skipped"] == counts["tests"]
            checks.add("tests", "gpu-marked tests collect and skip without CUDA", ok, summary)


# -- 3. parity ----------------------------------------------------------------------------------------------------
def _bars(mode: str, agreement: float, max_abs: float | None) -> Any:
    from edgecnn.parity import ParityBars

    return ParityBars(mode, agreement, max_abs, None)


def check_parity(provider: str, manifest: dict[str, Any], models: Path, checks: Check, results: dict[str, Any]) -> None:
    from edgecnn import Classifier
    from edgecnn.errors import ProviderError
    from edgecnn.parity import compare
    from edgecnn.runtime.preprocess import pixels_to_input

    dev_name = provider
    out: list[dict[str, Any]] = []
    results["parity"] = out
    for name, entry in manifest["models"].items():
        golden = np.load(models / entry["golden"]["file"])
        paths = {v: models / entry["variants"][v]["file"] for v in VARIANTS}
        cpu = {v: Classifier(paths[v], provider="cpu", tuning=False) for v in VARIANTS}
        meta = cpu["fp32"].metadata
        x, y, labels = pixels_to_input(golden["pixels"], meta), golden["y"], meta.labels
        for v in VARIANTS:
            t0 = time.perf_counter()
            try:
                dev = Classifier(paths[v], provider=provider, tuning=False)
            except ProviderError as err:  # the provider did not load: nothing to compare, the next variant may
                checks.add(
                    "parity", f"{name} {v}: session on {ORT_NAME[provider]}", False, f"ProviderError: {err}"[:400]
                )
                out.append(
                    {
                        "model": name,
                        "variant": v,
                        "provider": dev_name,
                        "error": str(err)[:600],
                        "gated": True,
                        "passed": False,
                    }
                )
                continue
            load_s = time.perf_counter() - t0
            used = dev.providers
            on_provider = used[0] == ORT_NAME[provider]
            checks.add(
                "parity",
                f"{name} {v}: session on {ORT_NAME[provider]}",
                used[0] == ORT_NAME[provider],
                f"providers {used}, created in {load_s * 1e3:.0f} ms",
            )
            comparisons = []
            if v == "fp32":
                comparisons.append(("cpu fp32", cpu["fp32"], _bars("fp32-gpu", 1.0, 1e-3), True))
                keras = golden["prob_keras"]
                comparisons.append(("keras (golden)", lambda _x, p=keras: p, _bars("fp32-gpu", 1.0, 1e-3), True))
            elif v == "fp16":
                comparisons.append(("cpu fp32", cpu["fp32"], _bars("fp16", 0.995, 1e-2), True))
                comparisons.append(("cpu fp16", cpu["fp16"], _bars("fp16", 0.995, 1e-2), True))
            else:
                comparisons.append(("cpu fp32", cpu["fp32"], _bars("int8", 0.98, None), True))
                comparisons.append(("cpu int8", cpu["int8"], _bars("int8", 0.98, None), True))
            cpu_golden = golden[f"prob_{v}"]  # this variant on the CPU machine's CPU provider: informative only
            comparisons.append(
                (
                    f"cpu {v} (golden, prepared on the CPU machine)",
                    lambda _x, p=cpu_golden: p,
                    _bars(v, 0.0, None),
                    False,
                )
            )
            cpu_misses: list[str] = []
            if v != "fp32":  # the variant against FP32 on the CPU alone: a quantization result, not a provider one
                base = compare(cpu["fp32"], cpu[v], x, y, labels, comparisons[0][2], batch_size=len(x))
                cpu_misses = base.failures
                checks.add(
                    "quantization",
                    f"{name} {v} vs fp32, both on the CPU, within DESIGN's bar",
                    None,
                    f"agreement {base.agreement:.2%}, max abs diff {base.max_abs_diff:.2e}"
                    + (
                        f"; misses it: {'; '.join(base.failures)} (so the {dev_name} row against cpu fp32 is "
                        "reported, not gated)"
                        if base.failures
                        else ""
                    ),
                )
            for ref_name, ref, bars, gated in comparisons:
                if ref_name == "cpu fp32" and cpu_misses:
                    gated = False
                t0 = time.perf_counter()
                rep = compare(
                    ref,
                    dev,
                    x,
                    y,
                    labels,
                    bars,
                    batch_size=len(x),
                    names=(ref_name, f"{dev_name} {v}"),
                    data=entry["data"],
                )
                d = rep.to_dict()
                row = {
                    "model": name,
                    "variant": v,
                    "provider": dev_name,
                    "reference": ref_name,
                    "n": rep.n,
                    "top1_agreement": rep.agreement,
                    "max_abs_diff": rep.max_abs_diff,
                    "mean_abs_diff": rep.mean_abs_diff,
                    "reference_accuracy": rep.reference_accuracy,
                    "candidate_accuracy": rep.candidate_accuracy,
                    "bars": d["bars"],
                    "gated": gated,
                    "passed": rep.passed and on_provider,
                    "failures": rep.failures
                    + ([] if on_provider else [f"session on {used[0]}, not the provider asked for"]),
                    "seconds": round(time.perf_counter() - t0, 2),
                }
                out.append(row)
                detail = (
                    f"agreement {rep.agreement:.2%}, max abs diff {rep.max_abs_diff:.2e}, accuracy "
                    f"{rep.reference_accuracy:.2%} → {rep.candidate_accuracy:.2%} on {rep.n}"
                )
                if row["failures"]:
                    detail += "; " + "; ".join(row["failures"])
                checks.add("parity", f"{name} {dev_name} {v} vs {ref_name}", row["passed"] if gated else None, detail)
            dev.close()


# -- 4. bench ------------------------------------------------------------------------------------------------------
def check_bench(
    provider: str,
    manifest: dict[str, Any],
    models: Path,
    out: Path,
    args: argparse.Namespace,
    checks: Check,
    results: dict[str, Any],
) -> None:
    from edgecnn.bench.api import slow_pair_warnings

    bench_dir = out / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    results["bench"] = runs
    providers = [provider] if provider == "cpu" else [provider, "cpu"]
    for name, entry in manifest["models"].items():
        files = [str(models / entry["variants"][v]["file"]) for v in VARIANTS]
        for prov in providers:
            stem = bench_dir / f"{name}.{prov}"
            cmd = [
                sys.executable,
                "-m",
                "edgecnn",
                "bench",
                *files,
                "--provider",
                prov,
                "--batch",
                args.batch,
                "--duration",
                str(args.duration),
                "--warmup",
                str(args.warmup),
                "--no-tuned",
                "--json",
                f"{stem}.json",
                "--report",
                f"{stem}.md",
                "--plot",
                f"{stem}.png",
            ]
            r = run(cmd, timeout=300)
            data = (
                json.loads(Path(f"{stem}.json").read_text()) if r["rc"] == 0 and Path(f"{stem}.json").exists() else {}
            )
            run_info: dict[str, Any] = {
                "model": name,
                "provider": prov,
                "cmd": r["cmd"],
                "rc": r["rc"],
                "seconds": r["seconds"],
                "files": [f"{stem.name}.{e}" for e in ("json", "md", "png")],
            }
            if r["rc"] != 0:
                run_info["output"] = tail(r["output"], 30)
            checks.add(
                "bench",
                f"{name} on {prov}: `edgecnn bench` exits 0",
                r["rc"] == 0,
                f"{r['seconds']:.0f} s" + ("" if r["rc"] == 0 else f", exit {r['rc']}: {tail(r['output'], 2)}"),
            )
            if data:
                models_info = data["models"]
                used = [m["providers"]["used"][0] for m in models_info]
                checks.add(
                    "bench",
                    f"{name} on {prov}: every variant ran on {prov}",
                    all(u == prov for u in used),
                    f"used {used}; nodes per provider {[m['providers']['nodes_per_provider'] for m in models_info]}",
                )
                for m, v in zip(models_info, VARIANTS, strict=True):
                    warned = bool(m["providers"].get("warnings"))
                    want = prov == "cuda" and v == "int8"
                    checks.add(
                        "bench",
                        f"{name} {v} on {prov}: INT8-on-CUDA warning {'present' if want else 'absent'}",
                        warned == want,
                        "; ".join(m["providers"].get("warnings", [])) or "no warning",
                    )
                run_info["rows"] = [
                    {
                        k: row.get(k)
                        for k in (
                            "name",
                            "batch",
                            "n",
                            "p50_ms",
                            "p90_ms",
                            "p99_ms",
                            "mean_ms",
                            "cv",
                            "throughput",
                            "host_device_copies_included",
                            "engine",
                        )
                    }
                    for row in data["steady_state"]
                ]
                run_info["cold_start"] = {Path(m["path"]).name: m["cold_start"] for m in models_info}
                run_info["notes"] = data["notes"]
                run_info["environment"] = {
                    k: data["environment"].get(k)
                    for k in ("cpu", "cpu_count", "onnxruntime_packages", "providers_available")
                }
            runs.append(run_info)
    if provider == "cpu":  # dry run: the warning logic itself, without a GPU
        w = slow_pair_warnings("m.int8.onnx", ORT_NAME["cuda"], {"QuantizeLinear", "DequantizeLinear", "Conv"})
        checks.add(
            "bench",
            "INT8 QDQ on CUDAExecutionProvider is flagged as a known slow pair (logic, no GPU)",
            len(w) == 1 and "known slow pair" in w[0],
            w[0] if w else "no warning",
        )


# -- 5. silent fallback ---------------------------------------------------------------------------------------------
def _strip_paths(value: str, drop: list[str]) -> str:
    return ":".join(p for p in value.split(":") if p and not any(d and p.startswith(d) for d in drop))


def fallback_scenarios(provider: str, args: argparse.Namespace) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, python command, environment) where the CUDA provider cannot work."""
    py = [sys.executable]
    base = {**os.environ, "EDGECNN_GPU_PRELOAD": "0"}  # and no preload_dlls in the children
    if provider == "cpu":
        out = [("CPU-only onnxruntime (no CUDA provider at all)", py, base)]
        if args.fallback_python:  # the real GPU wheel on this CPU machine: the provider is listed, cannot load
            env = {**base, "PYTHONPATH": os.pathsep.join([*args.fallback_pythonpath, str(ROOT)])}
            env["LD_LIBRARY_PATH"] = ""
            out.append(("onnxruntime-gpu without CUDA libraries (CPU machine)", [args.fallback_python], env))
        return out
    nvidia = [p for p in os.environ.get("EDGECNN_NVIDIA_LIBS", "").split(":") if p]
    ld = os.environ.get("LD_LIBRARY_PATH", "")
    no_cuda = {**base, "LD_LIBRARY_PATH": _strip_paths(ld, nvidia)}
    no_cudnn = {**base, "LD_LIBRARY_PATH": _strip_paths(ld, [p for p in nvidia if "cudnn" in p])}
    no_device = {**base, "CUDA_VISIBLE_DEVICES": ""}
    out = []
    if nvidia:  # without nvidia pip libraries on LD_LIBRARY_PATH there is nothing to hide this way
        out.append(
            ("CUDA libraries hidden (LD_LIBRARY_PATH without the nvidia pip libraries, no preload)", py, no_cuda)
        )
    if any("cudnn" in p for p in nvidia):
        out.append(("cuDNN hidden (LD_LIBRARY_PATH without nvidia/cudnn, no preload)", py, no_cudnn))
    return [*out, ("no visible device (CUDA_VISIBLE_DEVICES='')", py, no_device)]


def check_fallback(
    provider: str,
    manifest: dict[str, Any],
    models: Path,
    args: argparse.Namespace,
    checks: Check,
    results: dict[str, Any],
) -> None:
    first = next(iter(manifest["models"].values()))
    model = str(models / first["variants"]["fp32"]["file"])
    rows: list[dict[str, Any]] = []
    results["fallback"] = rows
    conclusive = 0
    if provider == "cuda" and not os.environ.get("EDGECNN_NVIDIA_LIBS"):
        checks.add(
            "fallback", "nvidia pip libraries on LD_LIBRARY_PATH to hide", None, "none (EDGECNN_NVIDIA_LIBS empty)"
        )
    for label, py, env in fallback_scenarios(provider, args):
        child = run([*py, "-c", FALLBACK_CHILD, model], env=env, timeout=120)
        found = [ln for ln in child["output"].splitlines() if ln.startswith("@@")]
        info = json.loads(found[-1][2:]) if found else {"outcome": f"no answer (exit {child['rc']})"}
        bench = run(
            [
                *py,
                "-m",
                "edgecnn",
                "bench",
                model,
                "--provider",
                "cuda",
                "--iterations",
                "5",
                "--warmup",
                "1",
                "--no-tuned",
            ],
            env=env,
            timeout=120,
        )
        row = {
            "scenario": label,
            "classifier": info,
            "bench_cmd": bench["cmd"],
            "bench_rc": bench["rc"],
            "bench_output": tail(bench["output"], 8),
            "child_log": tail(child["output"], 8),
        }
        rows.append(row)
        outcome = info.get("outcome")
        on_cuda = outcome == "session" and info.get("providers", [""])[0] == ORT_NAME["cuda"]
        if on_cuda and info.get("predicted"):
            checks.add(
                "fallback",
                f"{label}: inconclusive, CUDA still works here",
                None,
                f"providers {info.get('providers')}, predicted {info.get('predicted')}",
            )
            continue
        conclusive += 1
        if on_cuda:  # e.g. cuDNN is loaded lazily, at the first convolution: loud, but not a ProviderError
            detail = f"session on CUDA, then the first inference failed: {info.get('predict_error')}"
        elif outcome == "session":
            detail = f"SILENT CPU RUN — providers {info.get('providers')}, predicted {info.get('predicted')}"
        else:
            detail = f"{outcome}: {info.get('message', '')}"
        checks.add(
            "fallback",
            f"{label}: Classifier(provider='cuda') raises ProviderError, never a CPU run",
            outcome == "ProviderError",
            detail[:400],
        )
        checks.add(
            "fallback",
            f"{label}: `edgecnn bench --provider cuda` exits 3",
            bench["rc"] == 3,
            f"exit {bench['rc']}: {tail(bench['output'], 1)[:300]}",
        )
        loose = info.get("allow_fallback", {})
        checks.add(
            "fallback",
            f"{label}: allow_fallback=True runs on the CPU with a warning",
            None,
            f"{loose.get('providers', loose.get('error'))}, warnings {loose.get('warnings', [])}"[:400],
        )
    checks.add("fallback", "at least one environment made the CUDA provider fail", conclusive > 0, f"{conclusive}")


# -- report ---------------------------------------------------------------------------------------------------------
def render_markdown(data: dict[str, Any]) -> str:
    env = data["environment"]
    lines = [
        f"# GPU check — provider `{data['provider']}`" + (" (dry run on the CPU)" if data["provider"] == "cpu" else ""),
        "",
        f"- machine: {data['machine']}",
        f"- command: `{data['command']}`",
        f"- date: {data['date']}, {data['seconds']:.0f} s",
        f"- onnxruntime: {', '.join(env.get('onnxruntime_packages', []))}; providers available: "
        f"{', '.join(env.get('providers_available', []))}",
        f"- GPU: {data['gpu'].get('nvidia_smi') or 'none'}; load average at start (1/5/15 min): "
        f"{env.get('load_average_at_start')} — a shared machine's bench numbers move with it",
        f"- models prepared on: {data['prepared_on'].get('cpu')} ({data['prepared_on'].get('onnxruntime_packages')})",
        "",
        f"**{'PASSED' if data['passed'] else 'FAILED'}**: {data['counts']['passed']} passed, "
        f"{data['counts']['failed']} failed, {data['counts']['info']} informative",
        "",
        "## Checks",
        "",
        "| step | check | result | detail |",
        "| --- | --- | --- | --- |",
    ]
    for c in data["checks"]:
        mark = {True: "pass", False: "**FAIL**", None: "info"}[c["passed"]]
        lines.append(f"| {c['step']} | {c['check']} | {mark} | {c['detail'].replace('|', '/')[:300]} |")
    if data.get("parity"):
        lines += [
            "",
            "## Parity",
            "",
            "| model | variant | on | against | n | agreement | max abs diff | accuracy ref → cand | bar | result |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for p in data["parity"]:
            if "error" in p:
                lines.append(
                    f"| {p['model']} | {p['variant']} | {p['provider']} | — | — | — | — | — | — | **FAIL**: "
                    f"{p['error'][:160]} |"
                )
                continue
            b = p["bars"]
            bar = f"≥ {b['min_agreement']:.1%}" + (f", ≤ {b['max_abs_diff']:.0e}" if b["max_abs_diff"] else "")
            res = ("pass" if p["passed"] else "**FAIL**") if p["gated"] else "info"
            lines.append(
                f"| {p['model']} | {p['variant']} | {p['provider']} | {p['reference']} | {p['n']} | "
                f"{p['top1_agreement']:.2%} | {p['max_abs_diff']:.2e} | {p['reference_accuracy']:.1%} → "
                f"{p['candidate_accuracy']:.1%} | {bar if p['gated'] else '—'} | {res} |"
            )
    if data.get("bench"):
        lines += [
            "",
            "## Bench (p50 ms / throughput items/s)",
            "",
            "Rows on a GPU without `(with host copies)` are device latency with IO binding (input bound on "
            "the device once, output left there): host↔device copies excluded; `(with host copies)` rows "
            "copy the input in and the output back every call.",
            "",
            "| model | provider | runner | batch | p50 ms | p99 ms | items/s | copies included |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for b in data["bench"]:
            for r in b.get("rows", []):
                lines.append(
                    f"| {b['model']} | {b['provider']} | {r['name']} | {r['batch']} | {r['p50_ms']:.3f} | "
                    f"{r['p99_ms']:.3f} | {r['throughput']:,.0f} | {r['host_device_copies_included']} |"
                )
        notes = sorted({n for b in data["bench"] for n in b.get("notes", []) if n.startswith(("WARNING", "FALLBACK"))})
        if notes:
            lines += ["", *[f"- {n}" for n in notes]]
    if data.get("fallback"):
        lines += ["", "## Silent-fallback check", ""]
        for f in data["fallback"]:
            c = f["classifier"]
            lines.append(
                f"- **{f['scenario']}**: `Classifier(provider='cuda')` → {c.get('outcome')}"
                f" ({(c.get('message') or str(c.get('providers', '')))[:240]}); `edgecnn bench --provider "
                f"cuda` → exit {f['bench_rc']}"
            )
    lines += [
        "",
        "Bench reports (JSON/Markdown/PNG per model and provider) are in `bench/` beside this file when "
        "it was written by the check; the dry-run copy in `benchmarks/results/` keeps only this summary.",
    ]
    return "\n".join(lines) + "\n"


def runner_label(name: str) -> str:
    """'m.int8.onnx (with host copies)' -> 'int8 (with host copies)'; 'm.onnx' -> 'fp32'."""
    m = re.match(r"^.*?(?:\.(fp16|int8))?\.onnx(.*)$", name)
    return f"{m.group(1) or 'fp32'}{m.group(2)}" if m else name


def render_png(data: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no PNG (render it later with --render OUT/gpu_check.json)"
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    for ax, batch, key, title in (
        (axes[0], 1, "p50_ms", "batch-1 p50 latency (ms, log)"),
        (axes[1], None, "throughput", "throughput at the largest batch (items/s, log)"),
    ):
        labels, values, colors = [], [], []
        for b in data.get("bench", []):
            rows = b.get("rows", [])
            if not rows:
                continue
            want = batch or max(r["batch"] for r in rows)
            for r in rows:
                if r["batch"] == want:
                    labels.append(f"{b['model']} {runner_label(r['name'])} [{b['provider']}]")
                    values.append(r[key])
                    colors.append("tab:green" if b["provider"] == "cuda" else "tab:blue")
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)), labels, fontsize=6)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
    gated = [p for p in data.get("parity", []) if p["gated"] and "error" not in p]
    ax = axes[2]
    diffs = [max(p["max_abs_diff"], 1e-9) for p in gated]
    ax.barh(range(len(gated)), diffs, color=["tab:green" if p["passed"] else "tab:red" for p in gated])
    ax.set_yticks(range(len(gated)), [f"{p['model']} {p['variant']} vs {p['reference']}" for p in gated], fontsize=6)
    for i, p in enumerate(gated):
        if p["bars"]["max_abs_diff"]:
            ax.plot([p["bars"]["max_abs_diff"]] * 2, [i - 0.4, i + 0.4], color="black")
        ax.text(diffs[i], i, f" {p['top1_agreement']:.1%}", va="center", fontsize=6)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_title("parity: max abs diff (bar = limit), top-1 agreement", fontsize=9)
    fig.suptitle(
        f"edgecnn GPU check, provider {data['provider']} — {data['machine']} — "
        f"{'PASSED' if data['passed'] else 'FAILED'}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_outputs(data: dict[str, Any], out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / f"{name}.md").write_text(render_markdown(data))
    note = render_png(data, out / f"{name}.png")
    if note:
        print(note)


def machine_name(env: dict[str, Any], gpu: dict[str, Any]) -> str:
    cpu = re.sub(r"\s+", " ", str(env.get("cpu", "?"))).strip()
    smi = gpu.get("nvidia_smi")
    return f"{cpu}, {env.get('cpu_count')} vCPUs, " + (f"GPU {smi}" if smi else "no GPU")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provider", choices=("cuda", "cpu"), default="cuda", help="cpu: the dry run")
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder written by gpu_prepare.py")
    ap.add_argument("--out", type=Path, default=None, help="default: $OUT, else runs/gpu_check")
    ap.add_argument("--name", default="gpu_check", help="basename of the summary files")
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--duration", type=float, default=0.5, help="bench seconds per runner and batch size")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--skip", default="", help="comma-separated steps to skip: doctor,tests,parity,bench,fallback")
    ap.add_argument("--fallback-python", help="dry run: a Python that imports onnxruntime-gpu (e.g. 3.12)")
    ap.add_argument("--fallback-pythonpath", action="append", default=[], help="its PYTHONPATH entries")
    ap.add_argument("--machine", help="machine name for the report (default: from the CPU and nvidia-smi)")
    ap.add_argument("--render", type=Path, help="only re-render the MD/PNG of an existing summary JSON")
    args = ap.parse_args(argv)

    if args.render:
        data = json.loads(args.render.read_text())
        write_outputs(data, args.render.parent, args.render.stem)
        return 0
    out = args.out or Path(os.environ.get("OUT") or ROOT / "runs" / "gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    preload = None
    if args.provider == "cuda" and os.environ.get("EDGECNN_GPU_PRELOAD", "1") != "0":
        import io
        from contextlib import redirect_stdout

        import onnxruntime as ort

        buf = io.StringIO()
        with redirect_stdout(buf):
            ort.preload_dlls()
        preload = buf.getvalue().strip() or "ok (nothing printed)"
    from edgecnn.runtime.environment import describe_environment

    manifest_path = args.models / "manifest.json"
    if not manifest_path.exists():
        print(f"{manifest_path}: missing; run `python benchmarks/gpu_prepare.py` on the CPU machine first")
        return 3
    manifest = json.loads(manifest_path.read_text())
    env = describe_environment() | {"load_average_at_start": [round(v, 2) for v in os.getloadavg()]}
    gpu = gpu_info()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    checks = Check()
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    print(f"GPU check, provider {args.provider}, models {sorted(manifest['models'])}, out {out}", flush=True)
    for n, entry in manifest["models"].items():  # the files are the ones prepared
        from edgecnn._fs import sha256_file

        for v, f in {**entry["variants"], "golden": entry["golden"]}.items():
            ok = sha256_file(args.models / f["file"]) == f["sha256"]
            if not ok:
                checks.add("setup", f"{n} {v}: file matches the manifest", ok, f["file"])
    steps = [
        ("doctor", lambda: check_doctor(args.provider, checks, results)),
        ("tests", lambda: check_tests(args.provider, out, checks, results)),
        ("parity", lambda: check_parity(args.provider, manifest, args.models, checks, results)),
        ("bench", lambda: check_bench(args.provider, manifest, args.models, out, args, checks, results)),
        ("fallback", lambda: check_fallback(args.provider, manifest, args.models, args, checks, results)),
    ]

    def assemble(finished: bool) -> dict[str, Any]:
        counts = {
            "passed": sum(c["passed"] is True for c in checks.items),
            "failed": len(checks.failed),
            "info": sum(c["passed"] is None for c in checks.items),
        }
        data = {
            "provider": args.provider,
            "machine": args.machine or machine_name(env, gpu),
            "command": shlex.join([Path(sys.executable).name, *sys.argv]) if argv is None else shlex.join(argv),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": time.perf_counter() - t0,
            "passed": not checks.failed,
            "counts": counts,
            "environment": env,
            "gpu": gpu,
            "preload_dlls": preload,
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
            "prepared_on": manifest.get("prepared_on", {}),
            "models": {
                n: {k: e[k] for k in ("data", "n", "input", "variants", "cpu_accuracy")}
                for n, e in manifest["models"].items()
            },
            "finished": finished,
            "checks": checks.items,
            **results,
        }
        return data

    for step, fn in steps:
        if step in skip:
            continue
        s0 = time.perf_counter()
        print(f"== {step}", flush=True)
        try:
            fn()
        except Exception as err:  # one broken step must not hide the others' results
            checks.add(step, "step ran to the end", False, f"{type(err).__name__}: {err}"[:400])
        results.setdefault("step_seconds", {})[step] = round(time.perf_counter() - s0, 1)
        partial = assemble(finished=False)  # a run cut short (device time) still leaves its results
        (out / f"{args.name}.json").write_text(json.dumps(partial, indent=2, default=str) + "\n")
    data = assemble(finished=True)
    counts = data["counts"]
    write_outputs(data, out, args.name)
    print(
        f"\n{'PASSED' if data['passed'] else 'FAILED'}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['info']} informative in {data['seconds']:.0f} s → {out / args.name}.{{json,md,png}}"
    )
    for c in checks.failed:
        print(f"  FAIL {c['step']}: {c['check']} — {c['detail']}")
    return 4 if checks.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
