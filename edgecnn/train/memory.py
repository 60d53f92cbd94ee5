"""Training within a memory budget: how much a step needs, which batch fits, what the process really used.

A CPU training step keeps every layer's output of the forward pass for the backward pass, plus gradients and
TensorFlow's scratch buffers, so its memory grows linearly with the batch: ``fixed + batch × per_sample``.
``per_sample`` is the model's activation size (the sum of its layers' output sizes, float32) times
``ACTIVATION_FACTOR``, measured on this project's machine (benchmarks/train_memory.py); ``fixed`` is the
process as it stands once the model is built, plus TensorFlow's runtime, weights, gradients and Adam's slots.
"""

from __future__ import annotations

import math
import os
import re
import resource
import sys
from dataclasses import dataclass
from typing import Any

from edgecnn.errors import UsageError
from edgecnn.runtime.environment import machine_memory

# resident bytes a training step holds, per byte of one sample's float32 activations (forward copies, their
# gradients, TF's scratch buffers): MobileNetV2 at 224×224 measured 0.76 (1.76 GB peak at batch 8, 2.30 GB at 16,
# 89 MB of activations a sample; benchmarks/README.md, "Training within a memory budget"); 1.5 errs high
ACTIVATION_FACTOR = 1.5
# what TensorFlow adds once the first step has been traced and run (kernels, graph, allocator pools): ~0.5 GB
RUNTIME_BYTES = 512 << 20
# bytes per parameter during training: weights, gradients, Adam's two slots (float32 each)
PARAM_BYTES = 16
# what a finished run needs beyond the step (evaluation batches, plots, saving the model): kept free
HEADROOM = 0.10

_UNITS = {"": 1 << 30, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30}
_UNITS |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_size(text: str) -> int:
    """'6GB', '6g', '512M', '6' (GB), '1.5GiB' -> bytes (binary units: 1 GB = 2**30 bytes).

    Raises:
        UsageError: not a size.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"--memory-budget: expected a size such as 6GB, 512MB or 6 (GB), got {text!r}")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value < 1 << 20:
        raise UsageError(f"--memory-budget must be at least 1MB, got {text!r}")
    return int(value)


def human(n: float) -> str:
    """Bytes as GB/MB with one decimal (binary units)."""
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def default_budget() -> int:
    """A quarter of the machine: training leaves room for everything else running on it."""
    return machine_memory() // 4


def current_rss() -> int:
    """Resident bytes of this process now."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best we have
        return peak_rss()


def peak_rss() -> int:
    """The most resident bytes this process has held (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def activation_values(model: Any) -> int:
    """Float values one sample's forward pass produces: the sum of every layer's output size (nested models
    counted layer by layer)."""
    total = 0
    for layer in model.layers:
        inner = getattr(layer, "layers", None)
        if inner:
            total += activation_values(layer)
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer never called symbolically
            continue
        for out in outputs if isinstance(outputs, list | tuple) else [outputs]:
            total += math.prod(int(d) for d in out.shape[1:] if d is not None)
    return total


@dataclass(frozen=True, slots=True)
class StepMemory:
    """A training step's estimated memory: ``fixed + batch × per_sample`` bytes."""

    fixed: int
    per_sample: int

    def at(self, batch: int) -> int:
        return self.fixed + batch * self.per_sample

    @classmethod
    def of(cls, model: Any, input_bytes: int, baseline: int | None = None) -> StepMemory:
        """Estimate for ``model`` whose input sample is ``input_bytes`` (float32), with the process at
        ``baseline`` resident bytes (default: now)."""
        baseline = current_rss() if baseline is None else baseline
        per_sample = int(activation_values(model) * 4 * ACTIVATION_FACTOR) + 3 * input_bytes  # + queued batches
        return cls(fixed=baseline + RUNTIME_BYTES + PARAM_BYTES * int(model.count_params()), per_sample=per_sample)


@dataclass(frozen=True, slots=True)
class BatchChoice:
    """The batch size training uses, and why."""

    batch_size: int
    reason: str
    budget: int
    estimated: int  # bytes the step is estimated to need at this batch size
    fits: bool
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "reason": self.reason,
            "budget_bytes": self.budget,
            "estimated_bytes": self.estimated,
            "fits": self.fits,
            "warning": self.warning,
        }


def choose_batch_size(step: StepMemory, budget: int, default: int, requested: int | None = None) -> BatchChoice:
    """The largest batch up to the architecture's ``default`` whose step fits ``budget`` (less headroom);
    ``requested`` (--batch-size) always wins, with a warning when it does not fit.

    Raises:
        UsageError: not even one sample fits the budget (and no batch size was requested).
    """
    usable = int(budget * (1 - HEADROOM))
    budget_s = f"budget {human(budget)}"
    if requested is not None:
        need = step.at(requested)
        fits = need <= usable
        warning = None
        if not fits:
            best = max(0, (usable - step.fixed) // step.per_sample)
            warning = (
                f"--batch-size {requested} needs about {human(need)}, over the {budget_s}"
                + (f"; batch {min(best, requested)} would fit" if best >= 1 else "; not even batch 1 fits")
                + " (the kernel may kill the run)"
            )
        return BatchChoice(requested, f"--batch-size {requested} (asked for)", budget, need, fits, warning)
    best = (usable - step.fixed) // step.per_sample
    if best < 1:
        raise UsageError(
            f"one training sample needs about {human(step.at(1))} (the process holds {human(step.fixed)} before the "
            f"first step, {human(step.per_sample)} a sample), over the {budget_s}; raise --memory-budget "
            "or choose a smaller --input-size"
        )
    batch = int(min(best, default))
    if batch == default:
        reason = f"the architecture's default {default}: fits the {budget_s} (about {human(step.at(batch))})"
    else:
        reason = (
            f"largest that fits the {budget_s}: about {human(step.per_sample)} a sample + {human(step.fixed)} fixed "
            f"-> {human(step.at(batch))} (the default {default} would need {human(step.at(default))})"
        )
    return BatchChoice(batch, reason, budget, step.at(batch), True)


def cpu_precision() -> tuple[str, str]:
    """The training precision this CPU supports well and why: bfloat16 needs avx512_bf16 or AMX; else float32."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        flags = []
    have = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    if have:
        return "float32", f"CPU has {', '.join(have)}; bfloat16 mixed precision is not used yet (export stays FP32)"
    return "float32", "CPU has no avx512_bf16/amx_bf16: bfloat16 would be emulated (slower), so float32"
