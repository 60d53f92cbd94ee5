"""Quantization settings as a frozen config with named presets (like optimum's AutoQuantizationConfig)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from edgecnn.errors import UsageError


class QuantMode(str, Enum):
    int8 = "int8"  # static: calibrated activations + weights in 8 bits
    dynamic = "dynamic"  # weights only; activations quantized per call (slow for convnets on CPU)
    fp16 = "fp16"  # weights and activations in float16, float32 inputs/outputs kept


class QuantFormat(str, Enum):
    qdq = "qdq"  # QuantizeLinear/DequantizeLinear pairs; ORT fuses them into QLinear kernels
    qoperator = "qoperator"  # QLinearConv etc. written directly


class QuantTarget(str, Enum):
    """The CPUs a static/dynamic INT8 scheme must answer the same on (``edgecnn certify`` proves it).

    x86 without VNNI (AVX2, AVX-512BW) multiplies uint8 activations by int8 weights with ``vpmaddubsw``, which
    adds each pair of products into int16 with saturation: full-range 8-bit weights overflow it and answers
    change (onnxruntime issues 5849, 6004, 14642). 7-bit weights (``reduce_range``) keep every pair sum inside
    int16, so the same model answers the same on VNNI, AVX2, SSE4 and ARM64 (measured in benchmarks/README.md).
    """

    portable = "portable"  # every certify target: 7-bit weights (the default)
    x86_vnni = "x86-vnni"  # x86 with AVX-512 VNNI / AVX-VNNI, and ARM64: full-range weights, wrong on AVX2
    x86_avx2 = "x86-avx2"  # x86 with AVX2 (or AVX-512 without VNNI): 7-bit weights
    arm64 = "arm64"  # ARM64 only (exact int8 dot products): full-range weights


# the targets whose CPUs saturate on full-range U8S8 pair sums: they need 7-bit weights
REDUCE_RANGE_TARGETS = (QuantTarget.portable, QuantTarget.x86_avx2)


class CalibrationMethod(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


@dataclass(frozen=True, slots=True)
class QuantizeConfig:
    """How to quantize. Defaults are the fast, accurate choice measured on x86 CPUs (DESIGN.md)."""

    mode: QuantMode = QuantMode.int8
    format: QuantFormat = QuantFormat.qdq
    per_channel: bool = True  # per-channel weight scales: accuracy at no speed cost
    calibration_method: CalibrationMethod = CalibrationMethod.minmax  # the fast, robust default
    # None: up to DEFAULT_CALIBRATION_SAMPLES (enough for stable MinMax ranges), or all a smaller source holds;
    # an explicit number larger than the source is an error
    calibration_samples: int | None = None
    activation_type: str = "uint8"  # U8S8: uint8 activations + int8 weights runs as QLinearConv on x86
    weight_type: str = "int8"
    # the CPUs the model must answer the same on; it decides reduce_range unless that is given explicitly
    target: QuantTarget = QuantTarget.portable
    # 7-bit weights (None: what the target needs). Full-range weights (False) with a portable/x86-avx2 target is
    # refused: AVX2 would answer differently
    reduce_range: bool | None = None
    exclude_nodes: tuple[str, ...] = ()
    float_stem: bool = True  # keep convs over 1–4 input channels (and their pooling) in float: see stem.py
    exclude_op_types: tuple[str, ...] = ()
    # roles of the network to keep in float (edgecnn.quantize.anatomy.ROLE_ORDER): "hard-swish", "SiLU", ...
    float_roles: tuple[str, ...] = ()
    preprocess: bool = True  # ORT's quant_pre_process: shape inference + graph optimisation first
    # exact FP32 rewrites first (input normalisation folded into the stem, shape round trips dropped): rewrites.py
    simplify: bool = True
    seed: int = 0  # class-balanced calibration sampling

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", QuantTarget(self.target))
        if self.reduce_range is False and self.target in REDUCE_RANGE_TARGETS and self.mode != QuantMode.fp16:
            raise UsageError(
                f"target {self.target.value} needs 7-bit weights (reduce_range): full-range weights answer "
                "differently on x86 CPUs without VNNI; use --target x86-vnni or --target arm64 for full range"
            )
        if self.calibration_samples is not None and self.calibration_samples < 1:
            raise UsageError(f"calibration_samples must be >= 1, got {self.calibration_samples}")
        if self.activation_type not in ("uint8", "int8") or self.weight_type not in ("uint8", "int8"):
            raise UsageError("activation/weight types must be 'uint8' or 'int8'")
        from edgecnn.quantize.anatomy import ROLE_ORDER

        unknown = sorted(set(self.float_roles) - set(ROLE_ORDER))
        if unknown:
            raise UsageError(f"unknown float role(s) {unknown}; choose from {', '.join(ROLE_ORDER)}")

    @classmethod
    def int8(cls, **overrides: Any) -> QuantizeConfig:
        """Static INT8, QDQ, U8S8, per-channel, MinMax, portable (7-bit weights)."""
        return cls(mode=QuantMode.int8, **overrides)

    @classmethod
    def dynamic(cls, **overrides: Any) -> QuantizeConfig:
        """Dynamic (weights-only) INT8: fine for MLPs, slow for convnets on CPU."""
        return cls(mode=QuantMode.dynamic, per_channel=False, **overrides)

    @classmethod
    def fp16(cls, **overrides: Any) -> QuantizeConfig:
        """Float16 weights and activations, float32 inputs/outputs (the Classifier API is unchanged)."""
        return cls(mode=QuantMode.fp16, **overrides)

    def describe(self) -> str:
        if self.mode == QuantMode.fp16:
            return "fp16"
        if self.mode == QuantMode.dynamic:
            return f"dynamic{self._target_text()}"
        gran = "per-channel" if self.per_channel else "per-tensor"
        excl = f", excl {len(self.exclude_nodes)} nodes" if self.exclude_nodes else ""
        stem = ", float stem" if self.float_stem else ""
        roles = f", float {'/'.join(self.float_roles)}" if self.float_roles else ""
        method = self.calibration_method.value
        return f"int8 {self.format.value} {gran} {method}{stem}{roles}{excl}{self._target_text()}"

    @property
    def seven_bit_weights(self) -> bool:
        """Whether weights are quantized to 7 bits (reduce_range): explicit, else what the target needs."""
        return self.target in REDUCE_RANGE_TARGETS if self.reduce_range is None else self.reduce_range

    def _target_text(self) -> str:
        bits = "7-bit" if self.seven_bit_weights else "8-bit"
        return f", {self.target.value} ({bits} weights)"
