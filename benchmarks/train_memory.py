"""Training at 224×224 within the memory budget: peak RSS, images/s and the batch size chosen, per net.

    nice -n 5 python benchmarks/train_memory.py mobilenetv2 --limit 1000
    nice -n 5 python benchmarks/train_memory.py mobilenetv2 efficientnetb0 resnet50      # one full epoch each
    python benchmarks/train_memory.py --render                                           # results -> markdown

Each net runs as its own ``edgecnn train ARCH --data mnist5k --epochs 1 [--limit N] --json ...`` under
``/usr/bin/time -v`` (the kernel's view of the peak resident set, the number the issue's "Done when" asks
for), one at a time; the JSON report adds what train itself says (peak RSS from ru_maxrss, the batch size
and why, images/s). Rows merge into ``results/train_memory.json`` keyed by (arch, limit, budget), and
``results/train_memory.md`` is rendered from it. ``--adopt LOG JSON`` records a run already made by hand with
the same command (its ``/usr/bin/time -v`` output in LOG).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "train_memory.json"


def machine() -> str:
    from edgecnn.runtime.environment import cpu_model, machine_memory
    from edgecnn.train.memory import cpu_precision, human

    return f"{cpu_model()}, {os.cpu_count()} vCPUs, {human(machine_memory())} RAM; {cpu_precision()[1]}"


def command(arch: str, limit: int | None, budget: str | None, out: Path, report: Path) -> list[str]:
    cmd = ["edgecnn", "train", arch, "--data", "mnist5k", "--epochs", "1", "-o", str(out), "--json", str(report)]
    cmd += ["--limit", str(limit)] if limit else []
    return cmd + (["--memory-budget", budget] if budget else [])


def shown(arch: str, limit: int | None, budget: str | None) -> str:
    """The command as a user types it (the report path is the only difference from what ran)."""
    cmd = command(arch, limit, budget, Path("runs"), Path(f"{arch}.train.json"))
    return shlex.join(["nice", "-n", "5", "/usr/bin/time", "-v", *cmd])


def parse_time_v(text: str) -> dict[str, Any]:
    """Peak RSS (bytes) and wall seconds from ``/usr/bin/time -v`` output."""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if not rss or not wall:
        raise SystemExit("no /usr/bin/time -v summary in the log")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", text)
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    return {
        "peak_rss_bytes": int(rss.group(1)) * 1024,
        "wall_seconds": seconds,
        "cpu_percent": int(cpu.group(1)) if cpu else None,  # of one core: 200% is both cores of this machine
        "user_seconds": float(user.group(1)) if user else None,
        "system_seconds": float(system.group(1)) if system else None,
    }


def row(arch: str, limit: int | None, budget: str | None, log: str, report: dict[str, Any], cmd: str) -> dict[str, Any]:
    timed = parse_time_v(log)
    return {
        "arch": arch,
        "limit": limit,
        "budget": budget,
        "command": cmd,
        "peak_rss_bytes": timed["peak_rss_bytes"],
        "peak_rss_gb": round(timed["peak_rss_bytes"] / (1 << 30), 2),
        "report_peak_rss_bytes": report.get("peak_rss_bytes"),
        "wall_seconds": round(timed["wall_seconds"], 1),
        "cpu_percent": timed["cpu_percent"],
        "user_seconds": timed["user_seconds"],
        "system_seconds": timed["system_seconds"],
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "fit_seconds": round(report["seconds"], 1),
        "images_per_second": round(report["images_per_second"], 2) if report.get("images_per_second") else None,
        "batch_size": report.get("batch_size"),
        "batch_reason": report.get("batch_reason"),
        "memory_budget_bytes": report.get("memory_budget_bytes"),
        "estimated_step_bytes": report.get("estimated_step_bytes"),
        "n_train": report["n_train"],
        "n_val": report["n_val"],
        "n_test": report["n_test"],
        "test_accuracy": report["test_accuracy"],
        "warnings": report.get("warnings", []),
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run(arch: str, limit: int | None, budget: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="train-memory-") as tmp:
        out = Path(tmp)
        cmd = command(arch, limit, budget, out, out / "r.json")
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"{arch}: exit {proc.returncode}")
        report = json.loads((out / "r.json").read_text())
        return row(arch, limit, budget, proc.stderr, report, shown(arch, limit, budget))


def merge(new: dict[str, Any]) -> list[dict[str, Any]]:
    rows = json.loads(RESULTS.read_text())["rows"] if RESULTS.is_file() else []
    key = (new["arch"], new["limit"], new["budget"])
    rows = [r for r in rows if (r["arch"], r["limit"], r["budget"]) != key] + [new]
    RESULTS.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Training at 224×224 within a memory budget (benchmarks/train_memory.py)",
        "",
        "One epoch of `edgecnn train ARCH --data mnist5k --epochs 1` at the default 224×224 input, peak RSS from "
        "`/usr/bin/time -v`.",
        "",
        "| net | training images | batch (why) | peak RSS | estimated | images/s | fit s | wall s | CPU | test acc |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['n_train']} (+{r['n_val']} val, {r['n_test']} test)"
            + (f", --limit {r['limit']}" if r["limit"] else ", full mnist5k")
            + f" | {r['batch_size']} ({r['batch_reason']}) | **{r['peak_rss_gb']} GB** | "
            f"{(r.get('estimated_step_bytes') or 0) / (1 << 30):.2f} GB | {r['images_per_second']} | "
            f"{r['fit_seconds']} | {r['wall_seconds']} | {r.get('cpu_percent', '?')}% | {r['test_accuracy']:.1%} |"
        )
    machines = sorted({r["machine"] for r in rows})
    lines += ["", "Machine: " + "; ".join(machines) + ".", ""]
    lines += ["CPU is `/usr/bin/time -v`'s share of one core (200% = both cores of this machine).", ""]
    lines += ["Commands:", ""] + [f"    {r['command']}" for r in rows] + [""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", nargs="*", default=[])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--memory-budget", default=None)
    ap.add_argument("--adopt", nargs=2, metavar=("LOG", "JSON"), help="record a run made by hand (one arch)")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    rows = json.loads(RESULTS.read_text())["rows"] if RESULTS.is_file() else []
    if args.adopt:
        (arch,) = args.arch
        report = json.loads(Path(args.adopt[1]).read_text())
        log = Path(args.adopt[0]).read_text()
        cmd = shown(arch, args.limit, args.memory_budget)
        rows = merge(row(arch, args.limit, args.memory_budget, log, report, cmd))
    elif not args.render:
        for arch in args.arch:
            rows = merge(run(arch, args.limit, args.memory_budget))
            print(json.dumps(rows[-1], indent=2), flush=True)
    RESULTS.with_suffix(".md").write_text(render(rows))


if __name__ == "__main__":
    main()
