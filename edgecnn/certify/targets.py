"""The CPUs ``certify`` can check a model on, and how to reach each one: natively, or under QEMU's user-mode
emulation (``qemu-x86_64 -cpu Haswell`` makes a process see AVX2 without AVX-512 or VNNI, so onnxruntime's
MLAS picks the kernels that CPU would run).

QEMU's TCG emulates no AVX-512 and no AVX-VNNI: those CPUs cannot be checked here unless this host is one,
and the report lists them as not checkable rather than skipping them silently.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CpuTarget:
    """One CPU to check a model on."""

    name: str
    arch: str  # "x86_64" | "aarch64"
    qemu_cpu: str | None  # QEMU's -cpu model; None: this host, natively
    description: str
    cpuinfo_part: str = ""  # aarch64: the CPU part number a fake /proc/cpuinfo claims (must match -cpu)
    cpuinfo_features: str = ""  # aarch64: the feature flags it claims (claiming more than -cpu has: SIGILL)

    @property
    def emulated(self) -> bool:
        return self.qemu_cpu is not None


_ARMV8_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"

TARGETS: dict[str, CpuTarget] = {
    "x86-avx2": CpuTarget(
        "x86-avx2", "x86_64", "Haswell", "x86-64 AVX2, no AVX-512, no VNNI (Intel Haswell–Coffee Lake, AMD Zen 1–3)"
    ),
    "x86-sse4": CpuTarget("x86-sse4", "x86_64", "Nehalem", "x86-64 SSE4.2, no AVX (Intel Nehalem, older Atom)"),
    "arm64": CpuTarget(
        "arm64",
        "aarch64",
        "cortex-a72",
        "ARMv8.0 NEON, no dot product (Cortex-A72: Raspberry Pi 4, many SBCs)",
        cpuinfo_part="0xd08",
        cpuinfo_features=_ARMV8_FEATURES,
    ),
    "arm64-dot": CpuTarget(
        "arm64-dot",
        "aarch64",
        "neoverse-n1",
        "ARMv8.2 with int8 dot product (Neoverse-N1: AWS Graviton2, Ampere Altra)",
        cpuinfo_part="0xd0c",
        cpuinfo_features=f"{_ARMV8_FEATURES} atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp ssbs",
    ),
}
DEFAULT_TARGETS = ("native", "x86-avx2", "x86-sse4", "arm64", "arm64-dot")

# what TCG cannot emulate, keyed by the feature the host would need to check it natively
NOT_EMULATED = {
    "x86-avx512": ("avx512bw", "x86-64 AVX-512 without VNNI (Skylake-SP): QEMU emulates no AVX-512"),
    "x86-vnni": ("avx512_vnni", "x86-64 with AVX-512 VNNI or AVX-VNNI (Ice Lake+, Zen 4+): QEMU emulates no VNNI"),
}


def host_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The host's CPU feature flags (x86: /proc/cpuinfo ``flags``; empty where unreadable)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def describe_host(flags: set[str] | None = None) -> str:
    """What ``native`` stands for on this host, in the words of the targets (e.g. "x86-64 AVX2, no VNNI")."""
    flags = host_flags() if flags is None else flags
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        return f"{machine} (this host)"
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        kind = "x86-64 with VNNI" + (" (AVX-512)" if "avx512bw" in flags else " (AVX-VNNI)")
    elif "avx512bw" in flags:
        kind = "x86-64 AVX-512 without VNNI"
    elif "avx2" in flags:
        kind = "x86-64 AVX2, no VNNI"
    elif "sse4_2" in flags:
        kind = "x86-64 SSE4.2"
    else:
        kind = "x86-64"
    return f"{kind} (this host)"


def not_checkable(flags: set[str] | None = None) -> dict[str, str]:
    """CPU kinds no target covers on this host: {name: why}. A host that is one of them checks it as native."""
    flags = host_flags() if flags is None else flags
    out = {}
    for name, (feature, why) in NOT_EMULATED.items():
        native = feature in flags or (feature == "avx512_vnni" and "avx_vnni" in flags)
        if name == "x86-avx512" and "avx512_vnni" in flags:
            native = False  # a VNNI host runs VNNI kernels: AVX-512 without VNNI is still unchecked
        if not native:
            out[name] = why
    return out
