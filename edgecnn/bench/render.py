"""Benchmark results as a terminal table, Markdown and a PNG chart — all from ``BenchResult.to_dict()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from edgecnn._fs import write_text_atomic

COLUMNS = ("model / runtime", "batch", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "CV", "items/s", "× first")


def table_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for r in data["steady_state"]:
        p99 = f"{r['p99_ms']:.3f}" + ("*" if "p99" in r["unreliable_tails"] else "")
        rows.append(
            (
                r["name"],
                r["batch"],
                r["n"],
                f"{r['p50_ms']:.3f}",
                f"{r['p90_ms']:.3f}",
                p99,
                f"{r['mean_ms']:.3f}",
                f"{r['cv']:.2f}",
                f"{r['throughput']:,.0f}",
                f"{r['throughput_ratio_vs_first']:.2f}",
            )
        )
    return rows


def print_result(data: dict[str, Any]) -> None:
    from edgecnn import report

    env = data["environment"]
    report.print_kv(
        "environment",
        [
            ("cpu", f"{env['cpu']} ({env['cpu_count']} cores; {', '.join(env['cpu_features'])})"),
            ("onnxruntime", ", ".join(env["onnxruntime_packages"])),
            ("threads", env["threads"] or "onnxruntime default"),
        ],
    )
    for m in data["models"]:
        p = m["providers"]
        report.print_kv(
            f"model {Path(m['path']).name}",
            [
                ("variant", m["variant"]),
                ("size", f"{m['size_bytes'] / 1024:,.0f} KiB"),
                ("providers requested → used", f"{p['requested']} → {', '.join(p['used'])}"),
                ("nodes per provider", ", ".join(f"{k}: {v}" for k, v in p["nodes_per_provider"].items())),
                ("session creation", f"{m['cold_start']['session_create_ms']:.1f} ms"),
                ("first inference", f"{m['cold_start']['first_inference_ms']:.2f} ms"),
            ],
        )
    report.print_table("steady state (interleaved; * = too few samples for this tail)", COLUMNS, table_rows(data))
    for section in data.get("profile") or ():
        from edgecnn.bench.profile import role_columns, role_rows

        report.print_table(profile_title(section), role_columns(section), role_rows(section))
        report.console().print(escape(top_nodes_line(section)))
        if section["float_note"]:
            report.err_console().print(f"[yellow]note:[/yellow] {escape(section['float_note'])}")
    for note in data["notes"]:
        report.err_console().print(f"[yellow]note:[/yellow] {escape(note)}")
    verdict = data["verdict"]
    if verdict.get("gates", {}).get("max_p95_ms") is not None or verdict.get("gates", {}).get("min_throughput"):
        report.console().print(
            "verdict: " + ("PASS" if verdict["passed"] else "FAIL: " + escape("; ".join(verdict["failures"])))
        )


def profile_title(section: dict[str, Any]) -> str:
    """Which model, which sides, how measured: the heading of one ``--profile`` table."""
    sides = " vs ".join(f"{s['label']} {Path(s['path']).name}" for s in section["sides"])
    return (
        f"where the time goes by role: {sides} (onnxruntime profiler, batch {section['batch']}, "
        f"{section['runs']} runs, kernel µs per inference)"
    )


def top_nodes_line(section: dict[str, Any], n: int = 3) -> str:
    """The most expensive nodes of the first side: what a role's total is made of ("other" included)."""
    side = section["sides"][0]
    nodes = "; ".join(f"{t['node']} ({t['op']}, {t['role']}) {t['us']:,.1f} µs" for t in side["top_nodes"][:n])
    return f"largest {side['label']} nodes: {nodes}"


def to_markdown(data: dict[str, Any]) -> str:
    env = data["environment"]
    lines = [
        "# edgecnn bench",
        "",
        f"Machine: {env['cpu']}, {env['cpu_count']} cores; {', '.join(env['onnxruntime_packages'])}; "
        f"threads {env['threads'] or 'default'}; python {env['python']}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table_rows(data)]
    for section in data.get("profile") or ():
        from edgecnn.bench.profile import role_columns, role_rows

        cols = role_columns(section)
        lines += ["", f"## {profile_title(section)}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(row) + " |" for row in role_rows(section)]
        lines += ["", top_nodes_line(section)]
        if section["float_note"]:
            lines += ["", section["float_note"]]
    if data["notes"]:
        lines += ["", *[f"- {n}" for n in data["notes"]]]
    return "\n".join(lines) + "\n"


def write_markdown(data: dict[str, Any], path: str | Path) -> Path:
    write_text_atomic(path, to_markdown(data))
    return Path(path)


def write_plot(data: dict[str, Any], path: str | Path) -> Path:
    """Left: p50 latency with p90/p99 whiskers per runner (log scale); right: throughput bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgecnn.report import save_figure

    rows = data["steady_state"]
    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(len(batches), 2, figsize=(12, 1.2 + 0.55 * len(rows)), squeeze=False)
    for ax_lat, ax_thr in axes:
        ax_lat.set_visible(False)
        ax_thr.set_visible(False)
    for (ax_lat, ax_thr), batch in zip(axes, batches, strict=True):
        sub = [r for r in rows if r["batch"] == batch]
        names = [r["name"] for r in sub]
        y = range(len(sub))
        p50 = [r["p50_ms"] for r in sub]
        err = [[r["p50_ms"] - r["min_ms"] for r in sub], [r["p99_ms"] - r["p50_ms"] for r in sub]]
        colors = ["tab:blue" if r["kind"] == "onnxruntime" else "tab:gray" for r in sub]
        ax_lat.set_visible(True)
        ax_lat.barh(y, p50, xerr=err, color=colors, capsize=3)
        ax_lat.set_yticks(list(y), names)
        ax_lat.invert_yaxis()
        ax_lat.set_xscale("log")
        ax_lat.set_xlabel("latency per call, ms (bar p50, whiskers min…p99; log)")
        ax_lat.set_title(f"batch {batch}: latency")
        ax_thr.set_visible(True)
        ax_thr.barh(y, [r["throughput"] for r in sub], color=colors)
        ax_thr.set_yticks(list(y), [""] * len(sub))
        ax_thr.invert_yaxis()
        ax_thr.set_xlabel("items/s")
        ax_thr.set_title(f"batch {batch}: throughput")
        for i, r in enumerate(sub):
            ax_thr.text(r["throughput"], i, f" {r['throughput']:,.0f}", va="center", fontsize=8)
    env = data["environment"]
    fig.suptitle(
        f"edgecnn bench — {env['cpu']}, threads {env['threads'] or 'default'} (blue: onnxruntime, grey: baselines)"
    )
    fig.tight_layout()
    return save_figure(fig, path)
