"""The comparison itself: pure numpy over two predictors' probabilities."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgecnn.errors import InconclusiveError, MetadataError, ParityError
from edgecnn.runtime.metadata import ModelMetadata

Predictor = Callable[[np.ndarray], np.ndarray]
TIE_EPS = 1e-6  # reference top-2 within this: an exact tie, either answer is right
PP_EPS = 1e-9  # accuracies are ratios of counts: 5 of 1,000 wrong is a 0.5000000000000004 pp drop in floats
# an exact bar (FP32's 100% top-1) can never be resolved by n >= 1/(1 - bar): this many samples, stated
EXACT_BAR_MIN_SAMPLES = 100
TOPK_MIN_CLASSES = 10  # top-5 agreement where there are >= 10 classes (DESIGN.md), else top-1 only


def samples_needed(bar: float) -> int:
    """Samples a verdict on an agreement ``bar`` needs: n >= 1/(1 - bar), so that one disagreement could show
    (50 for 98%, 200 for 99.5%, 500 for 99.8%); an exact bar (100%) needs ``EXACT_BAR_MIN_SAMPLES``."""
    if bar >= 1.0:
        return EXACT_BAR_MIN_SAMPLES
    return max(1, math.ceil(1.0 / (1.0 - bar) - 1e-9))


@dataclass(frozen=True, slots=True)
class ParityBars:
    """The bars of DESIGN.md ("Numbers that define works") for one kind of candidate."""

    mode: str = "fp32"
    min_agreement: float = 1.0  # top-1 agreement, exact ties excepted
    max_abs_diff: float | None = 1e-4  # on probabilities
    max_accuracy_drop_pp: float | None = None  # percentage points, when labels are known

    @classmethod
    def for_mode(cls, mode: str) -> ParityBars:
        table = {
            "fp32": cls("fp32", 1.0, 1e-4, None),
            "fp32-gpu": cls("fp32-gpu", 1.0, 1e-3, None),
            "fp16": cls("fp16", 0.995, 1e-2, None),
            "int8": cls("int8", 0.98, None, 0.5),
            "dynamic": cls("dynamic", 0.98, None, 0.5),
        }
        if mode not in table:  # a typo in edgecnn.quantization must not get an arbitrary bar
            raise MetadataError(f"edgecnn.quantization: unknown mode {mode!r}; expected one of {sorted(table)}")
        return table[mode]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "min_agreement": self.min_agreement,
            "max_abs_diff": self.max_abs_diff,
            "max_accuracy_drop_pp": self.max_accuracy_drop_pp,
        }


def bars_for(meta: ModelMetadata | None, gpu: bool = False) -> ParityBars:
    """Bars for a candidate, from its ``edgecnn.quantization`` metadata (none: FP32)."""
    mode = str((meta.quantization or {}).get("mode", "fp32")) if meta is not None else "fp32"
    if mode == "fp32" and gpu:
        mode = "fp32-gpu"
    return ParityBars.for_mode(mode)


@dataclass(frozen=True)
class ParityReport:
    """What a parity run measured and whether it met the bars."""

    n: int
    agreement: float
    ties: int
    top5_agreement: float | None
    max_abs_diff: float
    mean_abs_diff: float
    reference_accuracy: float | None
    candidate_accuracy: float | None
    per_class_disagreements: dict[str, int]
    worst: list[dict[str, Any]]
    bars: ParityBars
    failures: list[str] = field(default_factory=list)
    reference: str = "reference"
    candidate: str = "candidate"
    data: str = ""
    random_data: bool = False  # random pixels: a numerical check that proves nothing about accuracy

    @property
    def samples_needed(self) -> int:
        return samples_needed(self.bars.min_agreement)

    @property
    def verdict(self) -> str:
        """PASS, FAIL or INCONCLUSIVE. A probability difference over its bar fails on any n (it was measured);
        otherwise fewer samples than ``samples_needed`` cannot resolve the agreement bar: INCONCLUSIVE,
        never PASS (nor FAIL: one disagreement in ten says little about a 98% bar)."""
        if self.bars.max_abs_diff is not None and self.max_abs_diff > self.bars.max_abs_diff:
            return "FAIL"
        if self.n < self.samples_needed:
            return "INCONCLUSIVE"
        return "FAIL" if self.failures else "PASS"

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    def verdict_text(self) -> str:
        """The verdict in words, with what it rests on."""
        if self.verdict == "INCONCLUSIVE":
            text = (
                f"INCONCLUSIVE: {self.n} samples cannot resolve a {self.bars.min_agreement:.1%} agreement bar; "
                f"at least {self.samples_needed} are needed"
            )
        elif self.verdict == "FAIL":
            text = "FAIL: " + "; ".join(self.failures)
        else:
            text = "PASS"
        if self.random_data:
            text += " (random pixels: a numerical check that proves nothing about accuracy)"
        return text

    @property
    def accuracy_delta_pp(self) -> float | None:
        if self.reference_accuracy is None or self.candidate_accuracy is None:
            return None
        return 100.0 * (self.candidate_accuracy - self.reference_accuracy)

    def raise_for_failure(self) -> ParityReport:
        """Raises ParityError (FAIL) or InconclusiveError (too few samples); both exit 4."""
        if self.verdict == "FAIL":
            raise ParityError(f"parity failed ({self.candidate} vs {self.reference}): " + "; ".join(self.failures))
        if self.verdict == "INCONCLUSIVE":
            raise InconclusiveError(
                f"parity INCONCLUSIVE ({self.candidate} vs {self.reference}, {self.data}): {self.n} samples cannot "
                f"resolve the {self.bars.mode} bar of {self.bars.min_agreement:.1%} top-1 agreement; at least "
                f"{self.samples_needed} are needed (more images in the folder, a larger --limit or another source)"
            )
        return self

    def summary(self) -> str:
        text = f"top-1 agreement {self.agreement:.2%} on {self.n} samples, max abs diff {self.max_abs_diff:.2e}"
        if self.accuracy_delta_pp is not None:
            text += f", accuracy {self.reference_accuracy:.2%} → {self.candidate_accuracy:.2%}"
        return text + " — " + self.verdict_text()

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "data": self.data,
            "n": self.n,
            "top1_agreement": self.agreement,
            "ties_excepted": self.ties,
            "top5_agreement": self.top5_agreement,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "reference_accuracy": self.reference_accuracy,
            "candidate_accuracy": self.candidate_accuracy,
            "accuracy_delta_pp": self.accuracy_delta_pp,
            "per_class_disagreements": self.per_class_disagreements,
            "worst": self.worst,
            "bars": self.bars.to_dict(),
            "verdict": self.verdict,
            "samples_needed": self.samples_needed,
            "random_data": self.random_data,
            "passed": self.passed,
            "failures": self.failures,
        }


class Batches(Protocol):
    """Model input made one batch at a time (``edgecnn.data.inputs.ModelInputs``)."""

    def batches(self, size: int) -> Iterable[np.ndarray]: ...


def _predict_both(
    reference: Predictor, candidate: Predictor, x: np.ndarray | Batches, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both predictors on each batch in turn, so that one batch of input exists at a time (a streamed source
    makes it here); the probabilities (n × classes) are what is kept."""
    parts = x.batches(batch) if hasattr(x, "batches") else (x[i : i + batch] for i in range(0, len(x), batch))
    ref, cand = [], []
    for part in parts:
        ref.append(np.asarray(reference(part), np.float32))
        cand.append(np.asarray(candidate(part), np.float32))
    return np.concatenate(ref), np.concatenate(cand)


def compare(
    reference: Predictor,
    candidate: Predictor,
    x: np.ndarray | Batches,
    y: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    bars: ParityBars | None = None,
    *,
    batch_size: int = 64,
    worst_k: int = 5,
    names: tuple[str, str] = ("reference", "candidate"),
    data: str = "",
    random_data: bool = False,
) -> ParityReport:
    """Run both predictors on ``x`` (an array, or inputs made batch by batch) and measure how far the
    candidate strays from the reference."""
    bars = bars or ParityBars()
    p_ref, p_cand = _predict_both(reference, candidate, x, batch_size)
    if p_ref.shape != p_cand.shape:
        raise ParityError(f"output shapes differ: {names[0]} {p_ref.shape} vs {names[1]} {p_cand.shape}")
    n, k = p_ref.shape
    top_ref, top_cand = p_ref.argmax(1), p_cand.argmax(1)
    sorted_ref = np.sort(p_ref, axis=1)
    tie = (sorted_ref[:, -1] - sorted_ref[:, -2] <= TIE_EPS) if k > 1 else np.zeros(n, bool)
    agree = (top_ref == top_cand) | tie
    diff = np.abs(p_ref - p_cand)
    top5 = None
    if k >= TOPK_MIN_CLASSES:  # the reference's answer is among the candidate's five best
        top5_cand = np.argsort(-p_cand, axis=1, kind="stable")[:, :5]
        top5 = float(((top5_cand == top_ref[:, None]).any(axis=1) | tie).mean()) if n else 1.0
    names_ = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    per_class: dict[str, int] = {}
    for i in np.flatnonzero(~agree):
        key = names_[top_ref[i]] if top_ref[i] < len(names_) else str(top_ref[i])
        per_class[key] = per_class.get(key, 0) + 1
    row_diff = diff.max(axis=1)
    worst = [
        {
            "index": int(i),
            "label": None if y is None else names_[int(y[i])],
            "reference": names_[int(top_ref[i])],
            "candidate": names_[int(top_cand[i])],
            "max_abs_diff": float(row_diff[i]),
        }
        for i in np.argsort(-row_diff, kind="stable")[:worst_k]
    ]
    ref_acc = cand_acc = None
    if y is not None:
        ref_acc = float(np.mean(top_ref == y))
        cand_acc = float(np.mean(top_cand == y))
    report = ParityReport(
        n=n,
        agreement=float(agree.mean()) if n else 1.0,
        ties=int(tie.sum()),
        top5_agreement=top5,
        max_abs_diff=float(diff.max()) if n else 0.0,
        mean_abs_diff=float(diff.mean()) if n else 0.0,
        reference_accuracy=ref_acc,
        candidate_accuracy=cand_acc,
        per_class_disagreements=per_class,
        worst=worst,
        bars=bars,
        reference=names[0],
        candidate=names[1],
        data=data,
        random_data=random_data,
    )
    report.failures.extend(_check(report, bars))
    return report


def _check(r: ParityReport, bars: ParityBars) -> list[str]:
    failures = []
    if r.agreement < bars.min_agreement:
        failures.append(f"top-1 agreement {r.agreement:.2%} < {bars.min_agreement:.2%}")
    if r.top5_agreement is not None and r.top5_agreement < bars.min_agreement:
        failures.append(f"top-5 agreement {r.top5_agreement:.2%} < {bars.min_agreement:.2%}")
    if bars.max_abs_diff is not None and r.max_abs_diff > bars.max_abs_diff:
        failures.append(f"max abs diff {r.max_abs_diff:.2e} > {bars.max_abs_diff:.0e}")
    drop = r.accuracy_delta_pp
    if bars.max_accuracy_drop_pp is not None and drop is not None and -drop > bars.max_accuracy_drop_pp + PP_EPS:
        failures.append(f"accuracy drop {-drop:.2f} pp > {bars.max_accuracy_drop_pp} pp")
    return failures
