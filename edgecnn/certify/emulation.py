"""How a target runs the certify runner: natively, under ``qemu-x86_64 -cpu MODEL`` on this interpreter, or
under ``qemu-aarch64`` in an aarch64 root that ``prepare_arm64`` builds once and caches.

The aarch64 root holds Debian's arm64 Python (same minor version as this interpreter) extracted with a
private apt state (the host's package configuration is never touched: no ``dpkg --add-architecture``), the
aarch64 wheels of this host's numpy and onnxruntime versions, and one small folder per CPU model with a
``/proc/cpuinfo`` that matches QEMU's ``-cpu`` (QEMU shows the host's x86 cpuinfo to the guest, on which
onnxruntime's cpuinfo crashes; claiming a feature the model lacks gives SIGILL).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgecnn.certify.targets import TARGETS, CpuTarget
from edgecnn.errors import MissingDependencyError, UsageError

RUNNER = Path(__file__).with_name("runner.py")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_SUITE_FOR_PYTHON = {(3, 11): "bookworm", (3, 13): "trixie"}  # the Debian release that packages python3.X
_ARM_PACKAGES = ("libpython{v}-stdlib", "python{v}-minimal", "libstdc++6", "libgcc-s1")
_WHEEL_PLATFORMS = (
    "manylinux_2_28_aarch64",
    "manylinux_2_27_aarch64",
    "manylinux_2_17_aarch64",
    "manylinux2014_aarch64",
)


def cache_root() -> Path:
    """Where emulation roots live: ``$EDGECNN_CACHE``, else ``$XDG_CACHE_HOME/edgecnn``, else ``~/.cache/edgecnn``."""
    if os.environ.get("EDGECNN_CACHE"):
        return Path(os.environ["EDGECNN_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgecnn"


def _versions() -> tuple[str, str, str]:
    import numpy
    import onnxruntime

    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return py, numpy.__version__, onnxruntime.__version__


def arm64_root() -> Path:
    """The aarch64 root for this interpreter's Python and this host's numpy/onnxruntime versions."""
    py, np_version, ort_version = _versions()
    return cache_root() / "emulation" / f"arm64-py{py}-numpy{np_version}-ort{ort_version}"


def is_prepared(root: Path | None = None) -> bool:
    root = root or arm64_root()
    return (root / "manifest.json").is_file()


def qemu_binary(arch: str) -> str:
    """Path of ``qemu-<arch>``, or MissingDependencyError naming the Debian package."""
    name = f"qemu-{arch}"
    found = shutil.which(name)
    if not found:
        raise MissingDependencyError(
            f"{name} not found: certify emulates other CPUs with QEMU user mode; install it with "
            "'apt-get install qemu-user' (Debian/Ubuntu)"
        )
    return found


def runner_command(target: CpuTarget | None, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command (and environment) that runs the certify runner with ``args`` on ``target`` (None: natively)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    if target is None:
        return [sys.executable, str(RUNNER), *args], env
    host = platform.machine()
    if target.arch == "x86_64":
        if host not in ("x86_64", "AMD64"):
            raise UsageError(f"target {target.name}: x86 emulation runs this interpreter, so it needs an x86-64 host")
        return [qemu_binary("x86_64"), "-cpu", str(target.qemu_cpu), sys.executable, str(RUNNER), *args], env
    root = arm64_root()
    if not is_prepared(root):
        raise UsageError(
            f"target {target.name}: no aarch64 root at {root}; build it once with 'edgecnn certify --prepare' "
            "(downloads Debian's arm64 Python and the aarch64 numpy/onnxruntime wheels)"
        )
    cpu_root = root / "cpu" / str(target.qemu_cpu)
    py = f"python{_versions()[0]}"
    env["PYTHONPATH"] = str(root / "site")
    return [
        qemu_binary("aarch64"),
        "-cpu",
        str(target.qemu_cpu),
        "-L",
        str(cpu_root),
        str(cpu_root / "usr" / "bin" / py),
        str(RUNNER),
        *args,
    ], env


def _run(cmd: list[str], what: str, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise MissingDependencyError(f"preparing the aarch64 root: {what} failed: {' | '.join(tail)}")
    return proc


def _apt_options(state: Path) -> list[str]:
    return [
        f"-oDir::State={state / 'state'}",
        f"-oDir::State::status={state / 'state' / 'status'}",
        f"-oDir::Cache={state / 'cache'}",
        "-oDir::Etc::SourceList=/dev/null",
        f"-oDir::Etc::SourceParts={state / 'sources'}",
        "-oDir::Etc::Preferences=/dev/null",
        f"-oDir::Etc::PreferencesParts={state / 'sources'}",
        "-oAPT::Architecture=arm64",
        "-oAPT::Architectures::=arm64",
        "-oDebug::NoLocking=1",
    ]


def _fetch_debian_python(work: Path, rootfs: Path, py: str) -> None:
    """Download Debian's arm64 Python with a private apt state (nothing of the host's apt changes), extract it."""
    suite = _SUITE_FOR_PYTHON.get(sys.version_info[:2])
    if suite is None:
        raise UsageError(f"no Debian release packages Python {py} for arm64; use Python 3.11–3.13 for arm64 targets")
    if not shutil.which("apt-get") or not DEBIAN_KEYRING.is_file():
        raise MissingDependencyError(
            f"building the aarch64 root needs apt-get and Debian's archive keyring ({DEBIAN_KEYRING}): "
            "run 'edgecnn certify --prepare' on Debian/Ubuntu (apt-get install debian-archive-keyring)"
        )
    for sub in ("state/lists/partial", "cache/archives/partial", "sources"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "state" / "status").touch()
    (work / "sources" / "debian.sources").write_text(
        f"Types: deb\nURIs: {DEBIAN_MIRROR}\nSuites: {suite}\nComponents: main\nArchitectures: arm64\n"
        f"Signed-By: {DEBIAN_KEYRING}\n"
    )
    opts = _apt_options(work)
    _run(["apt-get", *opts, "update"], "apt-get update (arm64 package lists)")
    packages = [p.format(v=py) for p in _ARM_PACKAGES]
    _run(
        ["apt-get", *opts, "install", "--download-only", "-y", "--no-install-recommends", *packages],
        f"downloading {', '.join(packages)}",
    )
    for deb in sorted((work / "cache" / "archives").glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(rootfs)], f"extracting {deb.name}")


def _fetch_wheels(work: Path, site: Path, np_version: str, ort_version: str) -> None:
    """The aarch64 wheels of this host's numpy and onnxruntime versions, installed into ``site``."""
    py_tag = f"{sys.version_info.major}{sys.version_info.minor}"
    common = ["--only-binary=:all:", "--no-deps", "--python-version", py_tag, "--implementation", "cp"]
    common += ["--abi", f"cp{py_tag}"]
    for plat in _WHEEL_PLATFORMS:
        common += ["--platform", plat]
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(
        [*pip, "download", *common, "-d", str(wheels), f"numpy=={np_version}", f"onnxruntime=={ort_version}"],
        f"pip download of aarch64 numpy {np_version} / onnxruntime {ort_version}",
    )
    _run(
        [*pip, "install", *common, "--target", str(site), *map(str, sorted(wheels.glob("*.whl")))],
        "installing the aarch64 wheels",
    )


def _cpuinfo(target: CpuTarget) -> str:
    return (
        f"processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: {target.cpuinfo_features}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {target.cpuinfo_part}\nCPU revision\t: 1\n\n"
    )


def prepare_arm64(*, force: bool = False) -> Path:
    """Build (or reuse) the aarch64 root for the arm64 targets; return it. Downloads ~55 MB once.

    Raises:
        MissingDependencyError: no qemu-aarch64, apt-get or Debian keyring, or a download failed.
    """
    root = arm64_root()
    if is_prepared(root) and not force:
        return root
    qemu_binary("aarch64")
    py, np_version, ort_version = _versions()
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".arm64-", dir=root.parent) as tmp:
        work = Path(tmp)
        build = work / "root"
        rootfs = build / "rootfs"
        rootfs.mkdir(parents=True)
        _fetch_debian_python(work / "apt", rootfs, py)
        _fetch_wheels(work, build / "site", np_version, ort_version)
        for target in TARGETS.values():
            if target.arch != "aarch64":
                continue
            cpu_root = build / "cpu" / str(target.qemu_cpu)
            (cpu_root / "proc").mkdir(parents=True)
            (cpu_root / "proc" / "cpuinfo").write_text(_cpuinfo(target))
            for entry in rootfs.iterdir():  # the same files for every CPU model; only /proc/cpuinfo differs
                (cpu_root / entry.name).symlink_to(Path("..", "..", "rootfs", entry.name))
        suite = _SUITE_FOR_PYTHON[sys.version_info[:2]]
        manifest = {"python": py, "numpy": np_version, "onnxruntime": ort_version, "debian": suite}
        (build / "manifest.json").write_text(json.dumps(manifest))
        if root.exists():
            shutil.rmtree(root)
        build.rename(root)
    return root
