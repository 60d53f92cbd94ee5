"""The trained model the tests share and its ONNX export, built by this script and committed, instead of
trained and converted in every run (and in every test worker).

Two stages, each with its own content key, so that a change to the exporter does not retrain:

- ``tests/artefacts/mnist-cnn/`` is what ``edgecnn train mnist-cnn`` writes with the course defaults (the model,
  its sidecar, history, metrics, the three plots); its key hashes the sources that decide what that training
  produces (the architecture, the data source, the training code, this script).
- ``tests/artefacts/exported/mnist-cnn.onnx`` is what ``edgecnn export`` makes of that model; its key hashes
  the trained model's bytes and the sources that decide the ONNX file (the exporter, the Keras adapter, the
  metadata contract, the version it records).

``tests/artefacts/manifest.json`` records both keys, the sha256 of each file and the training report;
``tests/core/test_artefacts.py`` fails while a stage is stale or a file altered, naming the command that
rebuilds what is stale:

    python tests/_artefacts.py        # the export alone: ~15 s; with training: ~1 min on 2 cores
    python tests/_artefacts.py --all  # both stages regardless; then commit tests/artefacts/

Every test still quantizes and runs for real from these files; the export tests convert for real too (slow set).
"""

from __future__ import annotations

import argparse
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
MODEL = f"{ARCH}/{ARCH}.keras"  # the trained model, relative to HERE: the export stage's input
ONNX = f"exported/{ARCH}.onnx"
# what decides the ONNX file made from the trained model (globs relative to the repository)
EXPORT_INPUTS = (
    "edgecnn/export/*.py",
    "edgecnn/keras_io.py",
    "edgecnn/runtime/metadata.py",
    "edgecnn/_version.py",
    "tests/_artefacts.py",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expand(patterns: tuple[str, ...]) -> list[str]:
    return sorted({p.relative_to(ROOT).as_posix() for pattern in patterns for p in ROOT.glob(pattern)})


def stage_inputs() -> dict[str, dict[str, str]]:
    """Each stage's inputs and their sha256 today (the export stage's include the trained model's bytes)."""
    trained = {rel: _sha256(ROOT / rel) for rel in INPUTS}
    exported = {rel: _sha256(ROOT / rel) for rel in _expand(EXPORT_INPUTS)}
    if (HERE / MODEL).is_file():
        exported[f"tests/artefacts/{MODEL}"] = _sha256(HERE / MODEL)
    return {"trained": trained, "exported": exported}


def content_key(inputs: dict[str, str]) -> str:
    """sha256 over a stage's inputs (name and content hash): what its committed files were built from."""
    digest = hashlib.sha256()
    for rel, sha in sorted(inputs.items()):
        digest.update(f"{rel}\0{sha}\0".encode())
    return digest.hexdigest()


def stale_stages(manifest: dict | None = None) -> list[str]:  # type: ignore[type-arg]
    """The stages whose committed files were built from other inputs than today's (in build order)."""
    if manifest is None:
        manifest = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
    today = stage_inputs()
    return [name for name in today if manifest.get(name, {}).get("key") != content_key(today[name])]


def problems() -> list[str]:
    """Why the committed artefacts cannot be used as they are (empty: they can)."""
    if not MANIFEST.is_file():
        return [f"{MANIFEST.relative_to(ROOT)} is missing: run `{REBUILD}`"]
    manifest = json.loads(MANIFEST.read_text())
    found = []
    today = stage_inputs()
    for name in stale_stages(manifest):
        built = manifest.get(name, {}).get("inputs", {})
        changed = sorted(set(today[name]) ^ set(built) | {r for r in today[name] if built.get(r) != today[name][r]})
        found.append(f"stale {name}: {', '.join(changed)} changed since it was built; run `{REBUILD}` and commit")
    for name in ("trained", "exported"):
        for rel, sha in manifest.get(name, {}).get("files", {}).items():
            path = HERE / rel
            if not path.is_file() or _sha256(path) != sha:
                found.append(f"tests/artefacts/{rel} is missing or altered; run `{REBUILD}` and commit")
    return found


def _check() -> dict:  # type: ignore[type-arg]
    found = problems()
    if found:
        raise RuntimeError("tests/artefacts: " + "; ".join(found))
    return json.loads(MANIFEST.read_text())


def trained_copy(dest: Path):  # type: ignore[no-untyped-def]
    """The committed training run copied under ``dest`` (tests may write beside it), as a ``TrainReport``."""
    from edgecnn.train import TrainReport

    report = _check()["trained"]["report"]
    out = dest / ARCH
    shutil.copytree(HERE / ARCH, out)
    fields = dict(report, artefacts={k: str(out / v) for k, v in report["artefacts"].items()})
    return TrainReport(**fields, model_path=out / f"{ARCH}.keras", out_dir=out)


def exported_copy(dest: Path) -> Path:
    """The committed ONNX export of the trained model copied to ``dest`` (a folder), its path returned."""
    _check()
    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(HERE / ONNX, dest / Path(ONNX).name))


def _files(*rels: str) -> dict[str, str]:
    paths = [p for rel in rels for p in ([HERE / rel] if (HERE / rel).is_file() else sorted((HERE / rel).rglob("*")))]
    return {p.relative_to(HERE).as_posix(): _sha256(p) for p in paths if p.is_file()}


def _train() -> dict:  # type: ignore[type-arg]
    """Train ``mnist-cnn`` with the course defaults into ``tests/artefacts/mnist-cnn/``."""
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
    return {"files": _files(ARCH), "report": fields}


def _export() -> dict:  # type: ignore[type-arg]
    """Export the committed trained model to ``tests/artefacts/exported/`` (parity checked as users get it)."""
    from edgecnn.export import export_keras

    (HERE / ONNX).parent.mkdir(parents=True, exist_ok=True)
    report = export_keras(HERE / MODEL, HERE / ONNX)
    return {"files": _files(ONNX), "parity": report.parity.summary()}


def build(stages: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    """Rebuild ``stages`` (default: the stale ones; the export follows a retraining) and rewrite the manifest."""
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
    manifest = {k: v for k, v in manifest.items() if k in ("trained", "exported")}
    todo = stale_stages(manifest) if stages is None else stages
    if "trained" in todo:
        manifest["trained"] = _train()
        todo = [*todo, "exported"]
    if "exported" in todo:
        manifest["exported"] = _export()
    today = stage_inputs()
    for name in set(todo):
        manifest[name].update(key=content_key(today[name]), inputs=today[name])
    manifest["command"] = REBUILD
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    return manifest


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="rebuild both stages even where current")
    made = build(["trained", "exported"] if parser.parse_args().all else None)
    files = {**made["trained"]["files"], **made["exported"]["files"]}
    size = sum((HERE / rel).stat().st_size for rel in files)
    acc = made["trained"]["report"]["test_accuracy"]
    print(f"tests/artefacts: {len(files)} files, {size / 1e6:.1f} MB, test accuracy {acc:.1%}", file=sys.stderr)
