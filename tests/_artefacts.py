"""The trained model the tests share, built by this script and committed, instead of trained in every run.

``tests/artefacts/mnist-cnn/`` is what ``edgecnn train mnist-cnn`` writes with the course defaults (the model,
its sidecar, history, metrics, the three plots); ``tests/artefacts/manifest.json`` records the content key it
was built for, the sha256 of each file and the training report. The key hashes the sources that decide what
that training produces (the architecture, the data source, the training code, this script);
``tests/core/test_artefacts.py`` fails while the committed files are stale or altered, naming the command that
rebuilds them:

    python tests/_artefacts.py        # ~1 min on 2 cores; then commit tests/artefacts/

Every test still converts, quantizes and runs for real from these files: only the training is done once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "artefacts"
MANIFEST = HERE / "manifest.json"
ARCH = "mnist-cnn"
REBUILD = "python tests/_artefacts.py"
# what decides the trained model and the files beside it (paths relative to the repository)
INPUTS = (
    "edgecnn/zoo/mnist.py",
    "edgecnn/zoo/registry.py",
    "edgecnn/data/sources.py",
    "edgecnn/train/fit.py",
    "edgecnn/train/stream.py",
    "edgecnn/train/plots.py",
    "tests/_artefacts.py",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_key() -> str:
    """sha256 over the sources in ``INPUTS`` (name and bytes): what the committed artefacts were built from."""
    digest = hashlib.sha256()
    for rel in INPUTS:
        digest.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def problems() -> list[str]:
    """Why the committed artefacts cannot be used as they are (empty: they can)."""
    if not MANIFEST.is_file():
        return [f"{MANIFEST.relative_to(ROOT)} is missing: run `{REBUILD}`"]
    manifest = json.loads(MANIFEST.read_text())
    found = []
    if manifest["key"] != content_key():
        changed = [rel for rel in INPUTS if manifest["inputs"].get(rel) != _sha256(ROOT / rel)]
        found.append(f"stale: {', '.join(changed)} changed since they were built; run `{REBUILD}` and commit")
    for rel, sha in manifest["files"].items():
        path = HERE / rel
        if not path.is_file() or _sha256(path) != sha:
            found.append(f"tests/artefacts/{rel} is missing or altered; run `{REBUILD}` and commit")
    return found


def trained_copy(dest: Path):  # type: ignore[no-untyped-def]
    """The committed training run copied under ``dest`` (tests may write beside it), as a ``TrainReport``."""
    from edgecnn.train import TrainReport

    found = problems()
    if found:
        raise RuntimeError("tests/artefacts: " + "; ".join(found))
    manifest = json.loads(MANIFEST.read_text())
    out = dest / ARCH
    shutil.copytree(HERE / ARCH, out)
    fields = dict(manifest["report"], artefacts={k: str(out / v) for k, v in manifest["report"]["artefacts"].items()})
    return TrainReport(**fields, model_path=out / f"{ARCH}.keras", out_dir=out)


def build() -> dict:  # type: ignore[type-arg]
    """Train ``mnist-cnn`` with the course defaults and write ``tests/artefacts/`` and its manifest."""
    from edgecnn.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        report = train(ARCH, Path(tmp), TrainConfig(verbose=0))
        shutil.rmtree(HERE / ARCH, ignore_errors=True)
        HERE.mkdir(parents=True, exist_ok=True)
        shutil.copytree(report.out_dir, HERE / ARCH)
    fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    for where in ("model_path", "out_dir"):
        fields.pop(where)
    fields["artefacts"] = {k: Path(v).name for k, v in report.artefacts.items()}
    files = {p.relative_to(HERE).as_posix(): _sha256(p) for p in sorted((HERE / ARCH).rglob("*")) if p.is_file()}
    manifest = {
        "key": content_key(),
        "inputs": {rel: _sha256(ROOT / rel) for rel in INPUTS},
        "command": REBUILD,
        "files": files,
        "report": fields,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    return manifest


if __name__ == "__main__":
    made = build()
    size = sum((HERE / rel).stat().st_size for rel in made["files"])
    acc = made["report"]["test_accuracy"]
    print(f"tests/artefacts: {len(made['files'])} files, {size / 1e6:.1f} MB, test accuracy {acc:.1%}", file=sys.stderr)
