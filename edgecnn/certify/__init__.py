"""``edgecnn certify``: prove that a model answers the same on the CPUs it ships to (x86 AVX2 and SSE4 under
QEMU on this interpreter, ARM64 in a prepared aarch64 root), and write the certificate beside it."""

from __future__ import annotations

from edgecnn.certify.api import CertifyConfig, CertifyError, CertifyReport, TargetResult, certify
from edgecnn.certify.emulation import arm64_root, is_prepared, prepare_arm64
from edgecnn.certify.targets import DEFAULT_TARGETS, TARGETS, CpuTarget

__all__ = [
    "DEFAULT_TARGETS",
    "TARGETS",
    "CertifyConfig",
    "CertifyError",
    "CertifyReport",
    "CpuTarget",
    "TargetResult",
    "arm64_root",
    "certify",
    "is_prepared",
    "prepare_arm64",
]
