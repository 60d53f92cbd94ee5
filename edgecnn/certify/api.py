"""``certify``: run a model on the same held-out inputs natively and under each emulated CPU, and say whether
it answers the same everywhere — the proof that an INT8 model behaves on the device as it did here.

"The same answer" is the same top-1 class; outputs may differ by a few quantization steps between kernels
(SSE4 and ARM round requantization slightly differently from AVX2/VNNI), so they are reported (max |Δprob|,
how many outputs differ at all) but the bar is on top-1 agreement with native and on accuracy.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.certify.emulation import runner_command
from edgecnn.certify.targets import DEFAULT_TARGETS, TARGETS, describe_host, host_flags, not_checkable
from edgecnn.errors import CertifyError, InconclusiveError, ModelError, UsageError

DIFF_EPS = 1e-6  # an output "differs" when some probability moves by more than this
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CertifyConfig:
    """What to certify against.

    Args:
        targets: "native" and names from ``edgecnn.certify.targets.TARGETS``.
        samples: held-out inputs; the 99.8% bar needs >= 500 to resolve one disagreement.
        min_agreement: top-1 agreement with native every target must reach.
        max_accuracy_drop_pp: accuracy a target may lose against native, in points (labelled data only).
        data: a data source (``mnist5k``, ``folder:DIR``) or ``random``; None: the model's own offline source.
        reference: the FP32 model; None: the one the quantized model records, when it is still there.
        timeout_s: per target (emulation runs INT8 60–140× slower than native).
    """

    targets: tuple[str, ...] = DEFAULT_TARGETS
    samples: int = 500
    min_agreement: float = 0.998
    max_accuracy_drop_pp: float = 0.5
    data: str | None = None
    reference: Path | None = None
    seed: int = 0
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        unknown = [t for t in self.targets if t != "native" and t not in TARGETS]
        if unknown or not self.targets:
            raise UsageError(
                f"unknown certify target(s) {unknown}; choose from native, {', '.join(TARGETS)}"
                if unknown
                else "certify needs at least one target"
            )
        if self.samples < 1:
            raise UsageError(f"--samples must be >= 1, got {self.samples}")
        if not 0.0 < self.min_agreement <= 1.0:
            raise UsageError(f"--min-agreement is a fraction in (0, 1], got {self.min_agreement}")
        if self.max_accuracy_drop_pp < 0:
            raise UsageError(f"the accuracy drop allowed must be >= 0 points, got {self.max_accuracy_drop_pp}")

    @property
    def samples_needed(self) -> int:
        """Samples that let one disagreement show against the bar (parity's resolution rule)."""
        from edgecnn.parity.compare import samples_needed

        return samples_needed(self.min_agreement)


@dataclass(frozen=True)
class TargetResult:
    """How one target answered, against native (and the FP32 reference when there is one)."""

    name: str
    cpu: str
    how: str  # "native" or the QEMU command's CPU model
    seconds: float
    agreement_native: float
    outputs_differ: int
    max_abs_diff: float
    accuracy: float | None = None
    agreement_reference: float | None = None
    cpu_features: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "how": self.how,
            "seconds": self.seconds,
            "agreement_native": self.agreement_native,
            "agreement_reference": self.agreement_reference,
            "accuracy": self.accuracy,
            "outputs_differ": self.outputs_differ,
            "max_abs_diff": self.max_abs_diff,
            "cpu_features": list(self.cpu_features),
            "passed": self.passed,
            "failures": list(self.failures),
        }


@dataclass(frozen=True)
class CertifyReport:
    """The verdict of one certify run; ``to_dict()`` is the certificate written beside the model."""

    model: Path
    sha256: str
    config: CertifyConfig
    data: str
    samples: int
    targets: dict[str, TargetResult]
    not_checkable: dict[str, str]
    native: str
    reference: str | None
    reference_accuracy: float | None
    onnxruntime: str
    date: str
    quantization: dict[str, Any] = field(default_factory=dict)

    @property
    def inconclusive(self) -> bool:
        return self.samples < self.config.samples_needed

    @property
    def passed(self) -> bool | None:
        """True/False; None when too few samples to resolve the bar."""
        if self.inconclusive:
            return None
        return all(t.passed for t in self.targets.values())

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "INCONCLUSIVE"}[self.passed]

    def raise_for_failure(self) -> None:
        """CertifyError (a target missed the bar) or InconclusiveError (too few samples to say); both exit 4."""
        if self.inconclusive:
            raise InconclusiveError(
                f"{self.model.name}: INCONCLUSIVE: {self.samples} samples cannot resolve a "
                f"{self.config.min_agreement:.1%} agreement bar; certify needs >= {self.config.samples_needed}"
            )
        failed = [f"{name}: {'; '.join(t.failures)}" for name, t in self.targets.items() if not t.passed]
        if failed:
            raise CertifyError(f"{self.model.name}: answers differ across CPUs: " + " | ".join(failed) + self._which())

    def _which(self) -> str:
        """Which side is wrong, when the FP32 reference can tell: the CPUs that agree with it best."""
        scores = {n: t.agreement_reference for n, t in self.targets.items() if t.agreement_reference is not None}
        if len(set(scores.values())) < 2:
            return ""
        best = max(scores.values())
        closest = [n for n, v in scores.items() if v == best]
        hint = " (full-range INT8 weights saturate on AVX2: quantize with --target portable)"
        return f"; FP32 agrees best with {', '.join(closest)} ({best:.1%}, native {scores['native']:.1%})" + (
            hint if "native" not in closest and self.quantization.get("reduce_range") is False else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {"name": self.model.name, "sha256": self.sha256},
            "verdict": self.verdict,
            "passed": self.passed,
            "data": self.data,
            "samples": self.samples,
            "samples_needed": self.config.samples_needed,
            "min_agreement": self.config.min_agreement,
            "max_accuracy_drop_pp": self.config.max_accuracy_drop_pp,
            "native": self.native,
            "reference": self.reference,
            "reference_accuracy": self.reference_accuracy,
            "targets": {name: t.to_dict() for name, t in self.targets.items()},
            "not_checkable": self.not_checkable,
            "quantization": self.quantization,
            "onnxruntime": self.onnxruntime,
            "date": self.date,
        }


def _reference_model(model: Path, meta: Any, given: Path | None) -> Path | None:
    """The FP32 model to compare with: given, else the source the quantized model records (by its recorded
    path, or by its file name beside the model), checked by sha256 when one is recorded."""
    if given is not None:
        if not Path(given).is_file():
            raise UsageError(f"--reference {given}: no such file")
        return Path(given)
    from edgecnn._fs import resolve_recorded, sha256_file

    recorded = (meta.quantization or {}).get("source_model") or {}
    candidates = []  # the recorded path (relative to the model's folder; absolute in older files), then the name
    for key in ("path", "name"):
        if recorded.get(key):
            candidates += [resolve_recorded(recorded[key], model.parent), model.parent / Path(recorded[key]).name]

    for path in candidates:
        if path.is_file() and (not recorded.get("sha256") or sha256_file(path) == recorded["sha256"]):
            return path
    return None


def _inputs(meta: Any, data: str | None, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    from edgecnn.data.sources import OFFLINE
    from edgecnn.parity.run import sample_inputs

    if data is None:
        own = meta.source.get("data")
        data = own if isinstance(own, str) and own in OFFLINE else None
    if data is None:
        raise UsageError(
            "certify needs held-out inputs: --data SOURCE (e.g. mnist5k, folder:DIR of images) or --data random"
        )
    if data == "random":
        x, _, described = sample_inputs(meta, None, limit=samples, seed=seed)
        return x, None, described + ": agreement across CPUs only, nothing about accuracy"
    return sample_inputs(meta, data, limit=samples, seed=seed)


def _run_target(
    model: Path, inputs: Path, work: Path, name: str, disabled: tuple[str, ...], timeout_s: float
) -> tuple[np.ndarray, dict[str, Any], float]:
    target = None if name == "native" else TARGETS[name]
    out = work / f"{name}-{model.stem}.npy"
    args = [str(model), str(inputs), str(out), *[f"--disable={d}" for d in disabled]]
    cmd, env = runner_command(target, args)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as err:
        raise ModelError(f"{model.name} on {name}: no answer within {timeout_s:.0f} s") from err
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not out.is_file():
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        raise ModelError(f"{model.name} on {name}: the runner failed (exit {proc.returncode}): {tail}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    seen = json.loads(lines[-1]) if lines else {}
    return np.load(out), seen, seconds


def certify(
    model: str | Path, config: CertifyConfig | None = None, *, progress: Progress | None = None, write: bool = True
) -> CertifyReport:
    """Run ``model`` natively and on each emulated target; compare; write ``MODEL.certificate.json``.

    Raises:
        UsageError (no data; unknown target; arm64 root not prepared), MissingDependencyError (no qemu-user),
        ModelError (the model fails to run somewhere). A missed bar is in the report: ``raise_for_failure()``.
    """
    import onnxruntime as ort

    from edgecnn._fs import sha256_file, write_text_atomic
    from edgecnn.runtime.certificate import certificate_path
    from edgecnn.runtime.classifier import read_metadata
    from edgecnn.runtime.postprocess import to_probabilities
    from edgecnn.runtime.session import session_hints, vet_model

    config = config or CertifyConfig()
    say = progress or (lambda _msg: None)
    model = Path(model)
    meta = read_metadata(model)
    disabled = tuple(session_hints(vet_model(model)[1]).get("disabled_optimizers", ()))
    reference = _reference_model(model, meta, config.reference)
    x, y, described = _inputs(meta, config.data, config.samples, config.seed)
    targets = tuple(dict.fromkeys(("native", *config.targets)))  # native first: everything compares with it
    probs: dict[str, np.ndarray] = {}
    rows: dict[str, TargetResult] = {}
    flags = host_flags()
    with tempfile.TemporaryDirectory(prefix="edgecnn-certify-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs.npy"
        np.save(inputs, np.ascontiguousarray(x))
        ref_probs = None
        if reference is not None:
            say(f"reference {reference.name}: {len(x)} samples natively")
            raw, _, _ = _run_target(reference.resolve(), inputs, work, "native", (), config.timeout_s)
            ref_probs = to_probabilities(raw, meta.output)
        for i, name in enumerate(targets, 1):
            how = "native" if name == "native" else f"qemu {TARGETS[name].qemu_cpu}"
            say(f"[{i}/{len(targets)}] {name} ({how}): {len(x)} samples")
            raw, seen, seconds = _run_target(model.resolve(), inputs, work, name, disabled, config.timeout_s)
            probs[name] = to_probabilities(raw, meta.output)
            rows[name] = _compare(name, how, probs[name], probs["native"], y, ref_probs, seen, seconds, config, flags)
            say(f"    {name}: {rows[name].agreement_native:.2%} top-1 agreement with native, {seconds:.1f} s")
    ref_acc = float((ref_probs.argmax(1) == y).mean()) if ref_probs is not None and y is not None else None
    report = CertifyReport(
        model=model,
        sha256=sha256_file(model),
        config=config,
        data=described,
        samples=len(x),
        targets=rows,
        not_checkable=not_checkable(flags),
        native=describe_host(flags),
        reference=reference.name if reference is not None else None,
        reference_accuracy=ref_acc,
        onnxruntime=ort.__version__,
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        quantization={k: (meta.quantization or {}).get(k) for k in ("mode", "target", "reduce_range")},
    )
    if write:
        write_text_atomic(certificate_path(model), json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def _compare(
    name: str,
    how: str,
    p: np.ndarray,
    native: np.ndarray,
    y: np.ndarray | None,
    ref: np.ndarray | None,
    seen: dict[str, Any],
    seconds: float,
    config: CertifyConfig,
    flags: set[str],
) -> TargetResult:
    top = p.argmax(1)
    agreement = float((top == native.argmax(1)).mean())
    diff = np.abs(p - native).max(axis=1)
    accuracy = float((top == y).mean()) if y is not None else None
    failures = []
    if agreement < config.min_agreement:
        flips = int((top != native.argmax(1)).sum())
        failures.append(f"top-1 agreement {agreement:.2%} < {config.min_agreement:.2%} ({flips} of {len(p)} flipped)")
    if accuracy is not None:
        drop_pp = (float((native.argmax(1) == y).mean()) - accuracy) * 100
        if drop_pp > config.max_accuracy_drop_pp + 1e-9:
            failures.append(f"accuracy {drop_pp:.2f} points below native (bar {config.max_accuracy_drop_pp})")
    return TargetResult(
        name=name,
        cpu=describe_host(flags) if name == "native" else TARGETS[name].description,
        how=how,
        seconds=seconds,
        agreement_native=agreement,
        outputs_differ=int((diff > DIFF_EPS).sum()),
        max_abs_diff=float(diff.max()) if len(diff) else 0.0,
        accuracy=accuracy,
        agreement_reference=float((top == ref.argmax(1)).mean()) if ref is not None else None,
        cpu_features=tuple(seen.get("cpu_features", ())),
        failures=tuple(failures),
    )
