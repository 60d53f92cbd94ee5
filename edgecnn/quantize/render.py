"""Terminal rendering of a QuantizeReport (the CLI calls it; the library returns data)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from edgecnn import report


def print_quantize_report(r: Any) -> None:
    cov = r.coverage
    rows: list[tuple[str, Any]] = [
        ("config", r.config.describe()),
        ("size", f"{r.size_before / 1024:,.0f} KiB → {r.size_after / 1024:,.0f} KiB ({r.size_ratio:.2f}× smaller)"),
        (
            "quantized kernels (optimised graph)",
            ", ".join(f"{k} {v}" for k, v in cov["quantized_ops"].items()) or "none",
        ),
        ("float compute left", ", ".join(f"{k} {v}" for k, v in cov["float_ops"].items()) or "none"),
    ]
    if r.accuracy:
        a = r.accuracy
        rows += [
            ("eval data", a["data"]),
            (
                "accuracy fp32 → quantized",
                None
                if a["reference_accuracy"] is None
                else f"{a['reference_accuracy']:.2%} → {a['candidate_accuracy']:.2%} "
                f"({a['accuracy_delta_pp']:+.2f} pp)",
            ),
            ("top-1 agreement", f"{a['top1_agreement']:.2%}"),
            ("top-5 agreement", None if a.get("top5_agreement") is None else f"{a['top5_agreement']:.2%}"),
            ("max abs diff", a["max_abs_diff"]),
            ("parity bars", a.get("verdict_text") or ("PASS" if a["passed"] else "FAIL: " + "; ".join(a["failures"]))),
        ]
    if r.speed:
        s = r.speed
        rows += [
            (
                "batch-1 p50 (1 thread)",
                f"{s['before']['p50_ms_batch1']:.3f} ms → {s['after']['p50_ms_batch1']:.3f} ms "
                f"({s['speedup_batch1']:.2f}×)",
            ),
            (
                "batch-32 throughput (1 thread)",
                f"{s['before']['throughput_batch32']:,.0f} → "
                f"{s['after']['throughput_batch32']:,.0f} img/s ({s['speedup_batch32']:.2f}×)",
            ),
        ]
    rows.append(("written", str(r.path)))
    report.print_kv(f"quantize {r.source.name} → {r.path.name}", rows)
    if r.anatomy:
        from edgecnn.quantize.anatomy import render_rows

        report.print_table(
            "what runs in INT8 (onnxruntime's optimised graph, by role)",
            ("role", "nodes", "int8", "float", "folded", "kernels", "why float"),
            render_rows(r.anatomy),
        )
    for note in r.warnings:
        report.err_console().print(f"[yellow]warning:[/yellow] {escape(note)}")
