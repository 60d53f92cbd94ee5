"""Policies over several one-shot quantizations: the INT8 fallback ladder (``hold_bars``) and
``--accuracy-budget`` (try the sensible INT8 configurations, keep the fastest within the budget).

Both call ``once.quantize_once``; ``api.quantize`` (the public entry) calls ``hold_bars``."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn._fs import atomic_path, variant_path
from edgecnn.errors import AccuracyBudgetError, UsageError
from edgecnn.quantize.config import CalibrationMethod, QuantizeConfig
from edgecnn.quantize.once import QuantizeReport, quantize_once


@dataclass(frozen=True)
class BudgetSearchReport:
    budget_pp: float
    tried: list[dict[str, Any]] = field(default_factory=list)
    chosen: QuantizeReport | None = None  # the report of the configuration kept

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


# the element-wise parts of MobileNetV3 / EfficientNet blocks: many requantizations in a row, where INT8
# error adds up; in float they cost little next to the convolutions around them
SENSITIVE_ROLES = ("squeeze-excite", "hard-swish", "SiLU", "sigmoid")


def bar_ladder(base: QuantizeConfig, src: Path) -> list[QuantizeConfig]:
    """What to try, roughly fastest first, when ``base`` misses the INT8 accuracy bars: the sensitive
    element-wise roles in float (where the network has them), Entropy / Percentile calibration, the first
    and last layers in float, then all of these together."""
    import onnx

    from edgecnn.quantize.anatomy import roles

    present = set(roles(onnx.load(str(src), load_external_data=False).graph).values())
    sensitive = tuple(r for r in SENSITIVE_ROLES if r in present)
    edges = tuple(n for n in _edge_nodes(src) if n not in base.exclude_nodes)
    out: list[QuantizeConfig] = []
    if sensitive:
        out.append(dataclasses.replace(base, float_roles=tuple(dict.fromkeys([*base.float_roles, *sensitive]))))
    out += [
        dataclasses.replace(base, calibration_method=m)
        for m in (CalibrationMethod.entropy, CalibrationMethod.percentile)
        if m != base.calibration_method
    ]
    if edges:
        out.append(dataclasses.replace(base, exclude_nodes=(*base.exclude_nodes, *edges)))
    if sensitive or edges:
        out.append(
            dataclasses.replace(
                out[0] if sensitive else base,
                calibration_method=CalibrationMethod.percentile,
                exclude_nodes=(*base.exclude_nodes, *edges),
            )
        )
    return [c for c in dict.fromkeys(out) if c != base]


def _bars_summary(accuracy: dict[str, Any]) -> str:
    return f"{accuracy.get('accuracy_delta_pp') or 0.0:+.2f} pp, {accuracy['top1_agreement']:.1%} agreement"


def hold_bars(
    src: Path,
    dst: Path,
    base: QuantizeConfig,
    *,
    calibration: str | Path | None,
    eval_data: str,
    first: QuantizeReport,
) -> QuantizeReport:
    """``first`` (the report of ``base``) missed the INT8 bars on ``eval_data``: quantize with each rung of
    ``bar_ladder`` and keep the first that holds them in ``dst``, saying so; else keep ``first``, saying that."""
    tried = [{"config": base.describe(), "passed": False, "accuracy": _bars_summary(first.accuracy)}]
    with tempfile.TemporaryDirectory(prefix="edgecnn-bars-", dir=dst.parent) as tmp:
        for i, cfg in enumerate(bar_ladder(base, src)):
            out = Path(tmp) / f"candidate{i}.onnx"
            rep = quantize_once(
                src,
                out,
                cfg,
                calibration=calibration,
                eval_data=eval_data,
                measure_speed=False,
                record_folder=dst.parent,  # the candidate ends up beside dst: paths recorded from there
            )
            passed = bool(rep.accuracy and rep.accuracy["passed"])
            tried.append({"config": cfg.describe(), "passed": passed, "accuracy": _bars_summary(rep.accuracy)})
            if passed:
                with atomic_path(dst, suffix=".onnx") as final:
                    shutil.copyfile(out, final)
                note = (
                    f"the default ({base.describe()}) missed the INT8 bars on {eval_data} ({tried[0]['accuracy']}); "
                    f"kept {cfg.describe()} instead ({tried[-1]['accuracy']})"
                )
                info = {**rep.quantization, "fallback": tried}
                return dataclasses.replace(rep, path=dst, quantization=info, warnings=[*rep.warnings, note])
    note = "no INT8 configuration tried holds the bars on {}: {}; kept the default".format(
        eval_data, "; ".join(f"{t['config']}: {t['accuracy']}" for t in tried)
    )
    return dataclasses.replace(
        first, quantization={**first.quantization, "fallback": tried}, warnings=[*first.warnings, note]
    )


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
    if not 0 <= budget_pp < float("inf"):  # NaN too
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
            rep = quantize_once(
                src,
                out,
                cfg,
                calibration=calibration,
                eval_data=eval_data,
                measure_speed=True,
                record_folder=dst.parent,  # the chosen candidate ends up beside dst: paths recorded from there
            )
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
        with atomic_path(dst, suffix=".onnx") as final:
            shutil.copyfile(out, final)
    chosen = dataclasses.replace(rep, path=dst)
    return BudgetSearchReport(budget_pp=budget_pp, tried=tried, chosen=chosen)
