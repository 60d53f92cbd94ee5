"""``--accuracy-budget``: try the sensible INT8 configurations, keep the fastest within the budget."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn._fs import variant_path
from edgecnn.errors import AccuracyBudgetError, UsageError
from edgecnn.quantize.config import CalibrationMethod, QuantizeConfig


@dataclass(frozen=True)
class BudgetSearchReport:
    budget_pp: float
    tried: list[dict[str, Any]] = field(default_factory=list)
    chosen: Any = None  # the QuantizeReport kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_pp": self.budget_pp,
            "tried": self.tried,
            "chosen": None if self.chosen is None else self.chosen.to_dict(),
        }


def _edge_nodes(path: Path) -> tuple[str, ...]:
    """Names of the first Conv and the last Gemm/MatMul: the layers most sensitive to quantization."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    first = next((n.name for n in nodes if n.op_type == "Conv"), None)
    last = next((n.name for n in reversed(nodes) if n.op_type in ("Gemm", "MatMul")), None)
    return tuple(n for n in (first, last) if n)


def candidates(base: QuantizeConfig, src: Path) -> list[QuantizeConfig]:
    """Per-channel/per-tensor × MinMax/Entropy/Percentile, then the first/last layers kept in float."""
    out = []
    for per_channel in (True, False):
        for method in CalibrationMethod:
            out.append(dataclasses.replace(base, per_channel=per_channel, calibration_method=method))
    edges = _edge_nodes(src)
    if edges:
        for method in CalibrationMethod:
            out.append(dataclasses.replace(base, per_channel=True, calibration_method=method, exclude_nodes=edges))
    return out


def search_within_budget(
    src: str | Path,
    dst: str | Path | None,
    budget_pp: float,
    *,
    calibration: str | Path | None,
    eval_data: str,
    base: QuantizeConfig | None = None,
) -> BudgetSearchReport:
    """Quantize with each candidate; keep the fastest (batch-32 throughput) whose accuracy drop on
    ``eval_data`` is within ``budget_pp`` percentage points.

    Raises:
        UsageError: no eval data; AccuracyBudgetError (exit 4): no candidate fits the budget.
    """
    from edgecnn.quantize.api import quantize

    if budget_pp < 0:
        raise UsageError(f"--accuracy-budget is the accuracy a model may lose, in points: >= 0, got {budget_pp}")
    if not eval_data:
        raise UsageError("--accuracy-budget needs --eval SRC (labelled data to measure the accuracy drop)")
    src = Path(src)
    base = base or QuantizeConfig.int8()
    dst = Path(dst) if dst else variant_path(src, "int8")
    tried: list[dict[str, Any]] = []
    best: tuple[float, Any, Path] | None = None
    with tempfile.TemporaryDirectory(prefix="edgecnn-budget-", dir=dst.parent if dst.parent.exists() else None) as tmp:
        for i, cfg in enumerate(candidates(base, src)):
            out = Path(tmp) / f"candidate{i}.onnx"
            rep = quantize(src, out, cfg, calibration=calibration, eval_data=eval_data, measure_speed=True)
            drop = -(rep.accuracy or {}).get("accuracy_delta_pp", 0.0)
            thr = rep.speed["after"]["throughput_batch32"] if rep.speed else 0.0
            fits = drop <= budget_pp
            tried.append(
                {"config": cfg.describe(), "accuracy_drop_pp": drop, "throughput_batch32": thr, "within_budget": fits}
            )
            if fits and (best is None or thr > best[0]):
                best = (thr, rep, out)
        if best is None:
            raise AccuracyBudgetError(
                f"no INT8 configuration stays within {budget_pp} pp on {eval_data}: "
                + "; ".join(f"{t['config']}: -{t['accuracy_drop_pp']:.2f} pp" for t in tried)
            )
        _, rep, out = best
        from edgecnn._fs import atomic_path

        with atomic_path(dst, suffix=".onnx") as final:
            shutil.copyfile(out, final)
    chosen = dataclasses.replace(rep, path=dst)
    return BudgetSearchReport(budget_pp=budget_pp, tried=tried, chosen=chosen)
