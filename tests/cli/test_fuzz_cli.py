"""A property-based fuzzer over the whole command line: every command, every option, with valid and invalid
values, files and combinations, in-process (CliRunner), seeded and bounded.

The contract it holds every command to:
    exit code in {0, 2, 3, 4}    (1 would be a bug: an exception edgecnn did not mean to raise)
    no traceback                 (errors are one line; click's usage errors are its usage text)
    exit 0 did something         (printed a result; an empty run is an error, not a success)
    finished within its time     (SECONDS_PER_RUN)

Adding a command is one entry in ``COMMANDS``: its positional arguments and its options, each a Hypothesis
strategy of command-line tokens (``FLAG`` for a switch). Files are named by role (``MODEL``, ``MISSING``, ...)
and made per example in a fresh folder. The fast profile runs with the default test set (a few seconds);
``test_fuzz_cli_long`` (slow) draws many more examples, and lets the expensive commands run on good files too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import make_tiny_onnx, write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edgecnn.cli import app

XDIST_PRIORITY = 1  # the long fuzz profile, ~1 min: started early, not left as the run's tail (tests/conftest.py)

runner = CliRunner()
SECONDS_PER_RUN = 20.0
FLAG = st.just(None)  # an option that takes no value

# -- files, by role: each example gets its own folder with every one of them ----------------------------------
MODEL, INT8, MISSING, FOLDER, EMPTY, TEXT, IMAGE, CALIB, LABELS, BRACKETS = (
    "@model",
    "@int8",
    "@missing",
    "@folder",
    "@empty",
    "@text",
    "@image",
    "@calib",
    "@labels",
    "@brackets",
)
GOOD_MODELS = [MODEL, INT8, BRACKETS]
BAD_FILES = [MISSING, FOLDER, EMPTY, TEXT, IMAGE]


def _write_fixtures(root: Path) -> None:
    """The files every example may name (copied from one prepared set: cheap)."""
    model = make_tiny_onnx(root / "tiny.onnx")
    for c, name in enumerate(("cat", "dog", "bird")):
        for i in range(4):  # 12 images: calibration's minimum is 10
            write_png(root / "calib" / name / f"{i}.png", size=(8, 8), seed=10 * c + i)
    result = runner.invoke(app, ["quantize", str(model), "--calibration", f"folder:{root / 'calib'}", "--no-speed"])
    assert result.exit_code == 0, result.output
    for i in range(3):
        write_png(root / "photos" / f"p{i}.png", seed=i)
    (root / "photos" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    (root / "text.onnx").write_text("this is not a model")
    write_png(root / "image.png").rename(root / "image.onnx")  # an image where a model should be
    (root / "labels.txt").write_text("cat\ndog\nbird\n")
    shutil.copy(model, root / "tiny[1].onnx")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-fixtures")
    _write_fixtures(root)
    return root


def _paths(work: Path) -> dict[str, str]:
    return {
        MODEL: str(work / "tiny.onnx"),
        INT8: str(work / "tiny.int8.onnx"),
        MISSING: str(work / "missing.onnx"),
        FOLDER: str(work / "photos"),
        EMPTY: str(work / "empty"),
        TEXT: str(work / "text.onnx"),
        IMAGE: str(work / "image.onnx"),
        CALIB: str(work / "calib"),
        LABELS: str(work / "labels.txt"),
        BRACKETS: str(work / "tiny[1].onnx"),
    }


# -- token strategies -----------------------------------------------------------------------------------------
def ints(lo: int = -3, hi: int = 8, *extra: object) -> st.SearchStrategy[str]:
    """Small integers (valid and not), a few edge values, and junk."""
    return st.one_of(
        st.integers(lo, hi).map(str),
        st.sampled_from([str(x) for x in extra] or ["0"]),
        st.sampled_from(["abc", "1.5", ""]),
    )


def floats(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from([*values, "0", "-1", "nan", "inf", "x"])


def choice(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


def files(*roles: str) -> st.SearchStrategy[str]:
    return st.sampled_from(roles)


def outputs(*names: str) -> st.SearchStrategy[str]:
    """Output names inside the example's folder (``@out:`` is resolved there); a folder is a bad output."""
    return st.sampled_from([f"@out:{n}" for n in names] + [FOLDER])


PROVIDERS = choice("auto", "cpu", "cuda", "tensorrt", "bogus")


@dataclass(frozen=True)
class Command:
    """How to call one command: positional argument strategies, option strategies, fixed cheap options."""

    args: list[st.SearchStrategy[str]]
    options: dict[str, st.SearchStrategy[str | None]]
    fixed: list[tuple[str, str | None]] = field(default_factory=list)  # unless the example sets the option
    cheap_args: list[st.SearchStrategy[str]] | None = None  # positional args in the fast profile (bad files only)
    slow_only: bool = False


COMMANDS: dict[str, Command] = {
    "classify": Command(
        args=[files(FOLDER, EMPTY, MISSING, IMAGE)],
        options={
            "--model": files(*GOOD_MODELS, *BAD_FILES),
            "--out": outputs("r.csv", "r.jsonl", "r.txt", "sub/r[1].csv"),
            "--batch": ints(-2, 8, 1000),
            "--top-k": ints(-1, 5),
            "--workers": ints(-2, 4),
            "--threads": ints(-1, 4),
            "--mode": choice("latency", "throughput", "fast"),
            "--provider": PROVIDERS,
            "--resume": FLAG,
            "--no-recursive": FLAG,
            "--json-summary": outputs("s.json"),
            "--ray": choice("127.0.0.1:1", "nohost", "ray://127.0.0.1:1", "localhost:x"),
            "--ray-actors": ints(-1, 3),
            "--ray-cpus-per-actor": ints(-1, 3),
            "--ray-timeout": floats("0.5", "5"),
        },
        fixed=[("--model", MODEL)],
    ),
    "quantize": Command(
        args=[files(*GOOD_MODELS, *BAD_FILES)],
        options={
            "--mode": choice("int8", "dynamic", "fp16", "int4"),
            "--out": outputs("q.onnx", "q.txt", "q[2].onnx"),
            "--format": choice("qdq", "qoperator", "x"),
            "--per-tensor": FLAG,
            "--method": choice("minmax", "entropy", "percentile", "median"),
            "--calibration": st.sampled_from(
                [f"folder:{CALIB}", CALIB, "nosuch", f"folder:{MISSING}", f"folder:{EMPTY}"]
            ),
            "--reduce-range": FLAG,
            "--full-range": FLAG,
            "--target": choice("portable", "x86-vnni", "x86-avx2", "arm64", "bogus"),
            "--speed": FLAG,
            "--samples": ints(-1, 12, 10_000),
            "--exclude-nodes": choice("nosuchnode", "", "a,b"),
            "--exclude-op-types": choice("Conv", "Gemm,Relu", "NoSuchOp"),
            "--no-float-stem": FLAG,
            "--float-roles": choice("SiLU", "nosuchrole", ""),
            "--eval": choice("nosuch", f"folder:{CALIB}"),
            "--accuracy-budget": floats("1", "0.5"),
            "--no-fallback": FLAG,
            "--seed": ints(-1, 3),
            "--json": outputs("q.json"),
        },
        fixed=[("--calibration", f"folder:{CALIB}"), ("--no-speed", None)],
    ),
    "bench": Command(
        args=[files(*GOOD_MODELS, *BAD_FILES)],
        options={
            "--provider": PROVIDERS,
            "--batch": choice("1", "0", "1,4", "a", "-1", "2,,3"),
            "--threads": ints(-1, 3),
            "--streams": choice("1", "1,2", "0", "x"),
            "--spin": FLAG,
            "--no-spin": FLAG,
            "--call": choice("direct", "run", "bogus"),
            "--no-tuned": FLAG,
            "--warmup": ints(-1, 3),
            "--iterations": ints(-1, 6),
            "--duration": floats("0.05"),
            "--scenario": choice("single-stream", "offline", "server"),
            "--baseline": choice("ort-int8", "keras-x"),
            "--calibration": st.sampled_from([f"folder:{CALIB}", "nosuch"]),
            "--max-p95-ms": floats("1000", "0.000001"),
            "--min-throughput": floats("1", "1e12"),
            "--keras": st.sampled_from([MISSING, "zoo:nosuch"]),
            "--allow-fallback": FLAG,
            "--trt-fp16": FLAG,
            "--trt-int8": FLAG,
            "--trt-cache": st.sampled_from([EMPTY, "@out:trt"]),
            "--profile": FLAG,
            "--json": outputs("b.json"),
            "--report": outputs("b.md"),
            "--plot": outputs("b.png", "b.jpg", "b.svg", "b.gif", "b"),
        },
        fixed=[("--iterations", "3"), ("--warmup", "1"), ("--duration", "0.05"), ("--no-tuned", None)],
    ),
    "info": Command(args=[files(*GOOD_MODELS, *BAD_FILES)], options={"--json": FLAG}),
    "annotate": Command(
        args=[files(MODEL, INT8, *BAD_FILES)],
        options={
            "--out": outputs("a.onnx", "a.txt"),
            "--labels": st.sampled_from(["cat,dog,bird", "a", "a,b", LABELS, "typo.txt", ","]),
            "--layout": choice("NHWC", "NCHW", "NWC", "bad"),
            "--size": choice("8,8", "8", "0,8", "x", "8,8,8"),
            "--mean": choice("0.5", "0.5,0.5,0.5", "0.1,0.2", "x"),
            "--std": choice("0.5", "0.2,0.2,0.2", "0", "x"),
            "--scale": floats("1", "0.0039"),
            "--offset": floats("0.5"),
            "--output": choice("softmax", "logits", "sigmoid", "relu"),
            "--color": choice("L", "RGB", "CMYK"),
            "--resize": choice("bilinear", "nearest", "bogus"),
            "--preset": choice("torchvision", "inception", "caffe", "bogus"),
            "--crop-mode": choice("squash", "center", "border", "x"),
            "--crop-pct": floats("0.875", "1", "1.5"),
            "--channel-order": choice("RGB", "BGR", "XYZ"),
            "--fast-decode": FLAG,
        },
        fixed=[("--out", "@out:a.onnx"), ("--labels", "cat,dog,bird"), ("--layout", "NHWC"), ("--size", "8,8")],
    ),
    "parity": Command(
        args=[files(*GOOD_MODELS, *BAD_FILES), files(*GOOD_MODELS, *BAD_FILES)],
        options={
            "--data": st.sampled_from(["nosuch", f"folder:{CALIB}", f"folder:{MISSING}"]),
            "--limit": ints(-4, 6),
            "--unsafe": FLAG,
            "--split": floats("0.2", "0.5", "1.5"),
            "--json": outputs("p.json"),
        },
    ),
    "certify": Command(
        args=[files(*GOOD_MODELS, *BAD_FILES)],
        options={
            "--reference": files(MODEL, MISSING, TEXT),
            "--data": st.sampled_from(["random", "nosuch", f"folder:{CALIB}", f"folder:{MISSING}"]),
            "--targets": choice("native", "x86-avx2", "native,x86-sse4", "x86-avx9", ""),
            "--samples": ints(-2, 60, 500),
            "--min-agreement": floats("0.98", "1", "1.5"),
            "--prepare": FLAG,
            "--json": outputs("c.json"),
        },
        # cheap by default: native only, a few samples (INCONCLUSIVE, exit 4, is a fine answer)
        fixed=[("--targets", "native"), ("--data", "random"), ("--samples", "50"), ("--min-agreement", "0.98")],
        cheap_args=[files(INT8, MODEL, *BAD_FILES)],
    ),
    "tune": Command(
        args=[files(*GOOD_MODELS, *BAD_FILES)],
        cheap_args=[files(*BAD_FILES)],
        options={
            "--batch": ints(-1, 4),
            "--cores": ints(-1, 2),
            "--seconds": floats("0.01"),
            "--rounds": ints(-1, 2),
            "--dry-run": FLAG,
            "--json": outputs("t.json"),
        },
        fixed=[("--seconds", "0.01"), ("--rounds", "1"), ("--dry-run", None)],
    ),
    "zoo": Command(args=[choice("mnist-*", "nomatch*", "*", "[")], options={"--json": outputs("z.json", "z.txt")}),
    "doctor": Command(args=[], options={"--gpu": FLAG, "--no-gpu": FLAG}),
    # TensorFlow and servers: only inputs that must be refused before any of them starts
    "export": Command(
        args=[st.sampled_from([MISSING, "zoo:nosuch", "@nokeras"])],
        options={
            "--out": outputs("e.onnx", "e.txt"),
            "--opset": ints(10, 23),
            "--labels": choice("a,b", ""),
            "--data": choice("nosuch", "mnist5k", f"folder:{MISSING}"),
            "--samples": ints(-1, 3),
            "--no-check": FLAG,
            "--unsafe": FLAG,
            "--no-simplify": FLAG,
            "--no-softmax": FLAG,
            "--json": outputs("e.json"),
        },
    ),
    "train": Command(
        args=[choice("nosuch-arch", "")],
        options={
            "--data": choice("nosuch", "digits", f"folder:{MISSING}"),
            "--epochs": ints(-1, 2),
            "--batch-size": ints(-1, 2),
            "--validation-split": floats("0.1", "0.6"),
            "--memory-budget": choice("4GB", "512MB", "1KB", "0", "lots", "-2GB"),
            "--patience": ints(-2, 2),
            "--limit": ints(-4, 2),
            "--input-size": ints(-1, 2),
            "--alpha": floats("1"),
            "--seed": ints(-1, 2),
            "--augment": FLAG,
            "--weights": choice("imagenet", "bogus"),
            "--out": outputs("m.keras", "m.h5", "runs"),
            "--json": outputs("t.json"),
        },
    ),
    "serve": Command(
        args=[files(*BAD_FILES)],
        options={
            "--port": ints(-1, 2, 70000, 8000),
            "--max-batch": ints(-1, 2),
            "--max-delay-ms": floats("2"),
            "--max-queue": ints(-1, 2),
            "--workers": ints(-1, 2),
            "--provider": PROVIDERS,
            "--threads": ints(-1, 2),
            "--max-body-mb": floats("1"),
            "--timeout": floats("1"),
            "--host": choice("127.0.0.1", "not a host", ""),
        },
    ),
    "demo": Command(
        args=[],
        options={"--epochs": choice("0", "-1", "x"), "--out": outputs("demo"), "--json": outputs("d.json")},
        fixed=[("--epochs", "0")],
    ),
}


@dataclass(frozen=True)
class Call:
    command: str
    argv: list[str]


def calls(names: list[str], *, fast: bool) -> st.SearchStrategy[Call]:
    """One command line for one of ``names``: its positional arguments, then a random subset of its options."""

    @st.composite
    def build(draw: Callable) -> Call:  # type: ignore[type-arg]
        name = draw(st.sampled_from(names))
        spec = COMMANDS[name]
        positional = spec.cheap_args if fast and spec.cheap_args is not None else spec.args
        argv = [name, *(draw(s) for s in positional)]
        chosen = draw(st.lists(st.sampled_from(sorted(spec.options)), max_size=4, unique=True)) if spec.options else []
        for option in chosen:
            value = draw(spec.options[option])
            argv += [option] if value is None else [option, value]
        for option, value in spec.fixed:
            if option not in chosen:
                argv += [option] if value is None else [option, value]
        return Call(name, argv)

    return build()


def _resolve(argv: list[str], work: Path) -> list[str]:
    paths = _paths(work)
    out = []
    for token in argv:
        if token.startswith("@out:"):
            token = str(work / "out" / token.removeprefix("@out:"))
        token = token.replace("@nokeras", str(work / "missing.keras"))
        for role, path in paths.items():
            token = token.replace(role, path)
        out.append(token)
    return out


def check_contract(call: Call, prepared: Path) -> None:
    """Run ``call`` in a fresh copy of the fixtures and hold it to the contract (module docstring)."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-fuzz-") as tmp:
        work = Path(tmp) / "w"
        shutil.copytree(prepared, work)
        (work / "out").mkdir()
        argv = _resolve(call.argv, work)
        cwd = os.getcwd()
        os.chdir(work)  # default outputs (exported/, runs/) land in the example's folder
        t0 = time.monotonic()
        try:
            result = runner.invoke(app, argv, env={"EDGECNN_DEBUG": "0"})
        finally:
            os.chdir(cwd)
        seconds = time.monotonic() - t0
    what = f"edgecnn {' '.join(argv)}\nexit {result.exit_code}\n{result.output}"
    assert result.exit_code in (0, 2, 3, 4), f"{what}\n{result.exception!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), what
    assert "Traceback" not in result.output, what
    if result.exit_code == 0:
        assert result.stdout.strip(), f"exit 0 having printed nothing: {what}"
    if result.exit_code in (3, 4):
        errors = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
        assert len(errors) == 1, what  # one line says what went wrong
    assert seconds < SECONDS_PER_RUN, f"{seconds:.1f} s: {what}"


FAST = [
    "classify", "quantize", "bench", "info", "annotate", "parity", "tune", "zoo", "export", "train", "serve", "certify"
]


# the fast profile: bounded and seeded, a few seconds; the slow profile below draws far more
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(call=calls(FAST, fast=True))
def test_fuzz_cli(call: Call, prepared: Path) -> None:
    check_contract(call, prepared)


@pytest.mark.slow
@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(call=calls(sorted(COMMANDS), fast=False))
def test_fuzz_cli_long(call: Call, prepared: Path) -> None:
    check_contract(call, prepared)


def test_every_command_and_option_is_fuzzed() -> None:
    """A new command or option needs its entry in COMMANDS (a switch counts when either side is there)."""
    import typer.main

    click_app = typer.main.get_command(app)
    assert set(COMMANDS) == set(click_app.commands)  # type: ignore[attr-defined]
    for name, spec in COMMANDS.items():
        for param in click_app.commands[name].params:  # type: ignore[attr-defined]
            names = {o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")} - {"--help"}
            if names and param.param_type_name == "option":
                assert names & set(spec.options), f"{name}: no strategy for {sorted(names)}"
