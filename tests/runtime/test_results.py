"""The results file: CSV formula escaping (and its reversal on resume), torn records, genuine resumes.

Paths here are relative (the walk runs from a cwd so that they start with ``=``): an absolute path
starts with ``/`` and would never reach the escaping.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import make_tiny_onnx, write_png
from hypothesis import given
from hypothesis import strategies as st

from edgecnn import Classifier
from edgecnn.runtime.folder import classify_to_file
from edgecnn.runtime.results import (
    CSV_FIELDS,
    ResultWriter,
    csv_escape,
    csv_unescape,
    format_row,
    partial_path,
    read_done_paths,
)
from edgecnn.runtime.rows import ClassifyRow

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def _cells(line: str) -> list[str]:
    (rec,) = list(csv.reader(io.StringIO(line, newline="")))
    return rec


def _records(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


# -- escaping ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_csv_escape_prefixes_each_formula_start_and_unescape_strips_exactly_one(start: str) -> None:
    value = f"{start}x/a.png"
    assert csv_escape(value) == "'" + value
    assert csv_unescape(csv_escape(value)) == value
    assert csv_unescape("''" + value) == "'" + value  # only one quote comes off


@pytest.mark.parametrize("value", ["x/a.png", "a=b.png", "", " =x", "photo-1.png", "ünïcode.png"])
def test_csv_escape_leaves_other_values_alone(value: str) -> None:
    assert csv_escape(value) == value and csv_unescape(value) == value


@given(st.text(max_size=20))
def test_csv_escape_round_trips(text: str) -> None:
    assert csv_unescape(csv_escape(text)) == text
    assert csv_escape(text)[:1] not in FORMULA_STARTS[:-1]  # never starts a formula


def test_format_row_escapes_relative_paths_labels_top_k_and_errors() -> None:
    ok = ClassifyRow("=x/a.png", label="=SUM(1)", score=0.75, top_k=(("=SUM(1)", 0.75), ("b", 0.25)))
    assert _cells(format_row(ok, "csv")) == [
        "'=x/a.png",
        "'=SUM(1)",
        "0.750000",
        "'=SUM(1):0.750000;b:0.250000",
        "",
        "",
    ]
    bad = ClassifyRow("+x/b.png", error_type="ImageError", error="-1 bytes read: @truncated")
    assert _cells(format_row(bad, "csv")) == ["'+x/b.png", "", "", "", "ImageError", "'-1 bytes read: @truncated"]
    plain = ClassifyRow("x/c.png", label="cat", score=0.5, top_k=(("cat", 0.5),))
    assert _cells(format_row(plain, "csv"))[:2] == ["x/c.png", "cat"]
    # JSON lines are data, not a spreadsheet: no escaping
    assert json.loads(format_row(ok, "jsonl"))["path"] == "=x/a.png"
    assert json.loads(format_row(ok, "jsonl"))["label"] == "=SUM(1)"


@pytest.fixture
def formula_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path, holding '=x/' with 12 images (one named '@y.png'), walked as relative paths."""
    monkeypatch.chdir(tmp_path)
    for i in range(11):
        write_png(tmp_path / "=x" / f"{i:02d}.png", seed=i)
    write_png(tmp_path / "=x" / "@y.png", seed=99)
    return tmp_path


@pytest.fixture
def formula_model(tmp_path: Path) -> Classifier:
    return Classifier(make_tiny_onnx(tmp_path / "m.onnx", labels=("=SUM(1)", "+b", "plain")))


def _walked() -> list[str]:
    return sorted(str(Path("=x") / p.name) for p in Path("=x").iterdir())


def test_a_folder_run_escapes_relative_paths_and_labels(formula_folder: Path, formula_model: Classifier) -> None:
    out = Path("r.csv")
    summary = classify_to_file(formula_model, "=x", out, batch_size=4)
    assert summary.total == summary.ok == 12
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(CSV_FIELDS)
    assert all(line.startswith("'=x/") for line in lines[1:])  # every path cell starts with the quote
    records = _records(out)
    assert sorted(csv_unescape(r["path"]) for r in records) == _walked()
    labels = {r["label"] for r in records}
    assert labels and labels <= {"'=SUM(1)", "'+b", "plain"} and "=SUM(1)" not in labels
    assert all(not r["top_k"].startswith(("=", "+")) for r in records)
    assert read_done_paths(out, "csv")[0] == set(_walked())  # resume sees the real paths


# -- resume of genuinely partial runs ---------------------------------------------------------------
def _rows(data: bytes, fmt: str) -> list[tuple[str, str | None, float | None]]:
    text = data.decode("utf-8")
    if fmt == "jsonl":
        return [(d["path"], d["label"], d["score"]) for d in map(json.loads, text.splitlines())]
    recs = csv.DictReader(io.StringIO(text, newline=""))
    return [(csv_unescape(r["path"]), r["label"], float(r["score"]) if r["score"] else None) for r in recs]


def _assert_same_run(out: Path, full: bytes, keep: int) -> None:
    """The resumed file = the uninterrupted one: its first ``keep`` bytes untouched, then the same rows
    (scores to 1e-5: the resumed rows ran in other batches)."""
    after = out.read_bytes()
    assert after[:keep] == full[:keep]  # the rows already there were not rewritten
    fmt = out.suffix[1:]
    got, want = _rows(after, fmt), _rows(full, fmt)
    assert [r[:2] for r in got] == [r[:2] for r in want]  # every path once, in order, same labels
    assert [r[2] for r in got] == pytest.approx([r[2] for r in want], abs=1e-5)


def _finished_run(clf: Classifier, out: Path, **kw) -> bytes:  # type: ignore[no-untyped-def]
    """The uninterrupted run of ``=x`` into ``out`` that each resume test cuts and compares against: its bytes."""
    classify_to_file(clf, "=x", out, **kw)
    return out.read_bytes()


def _line_ends(data: bytes) -> list[int]:
    """Offsets just past each newline: where a record (or a CSV header) ends."""
    return [i + 1 for i, b in enumerate(data) if b == ord("\n")]


def _cut_and_resume(clf: Classifier, out: Path, full: bytes, cut: int, **kw):  # type: ignore[no-untyped-def]
    """Leave the first ``cut`` bytes of a finished run as OUT.partial (a kill there), then resume."""
    out.unlink(missing_ok=True)
    partial_path(out).write_bytes(full[:cut])
    done_before, intact = read_done_paths(partial_path(out), "csv" if out.suffix == ".csv" else "jsonl")
    summary = classify_to_file(clf, "=x", out, resume=True, **kw)
    return summary, done_before, intact


def test_resume_after_a_cut_mid_record_keeps_the_rows_and_redoes_only_the_rest(
    formula_folder: Path, formula_model: Classifier
) -> None:
    out = Path("r.csv")
    full = _finished_run(formula_model, out, batch_size=4)
    line_ends = _line_ends(full)
    cut = line_ends[5] + 9  # header + 5 records + 9 bytes of the sixth (inside its path)
    summary, done_before, intact = _cut_and_resume(formula_model, out, full, cut, batch_size=4)
    assert intact == line_ends[5] and len(done_before) == 5
    assert summary.resumed == 5 and summary.ok == 7 and summary.total == 12  # only the 7 missing were run
    _assert_same_run(out, full, intact)
    paths = [csv_unescape(r["path"]) for r in _records(out)]
    assert len(paths) == 12 and sorted(paths) == _walked()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_resume_at_every_cut_of_one_record_gives_every_path_once(
    formula_folder: Path, formula_model: Classifier, fmt: str
) -> None:
    out = Path(f"r.{fmt}")
    full = _finished_run(formula_model, out)
    line_ends = _line_ends(full)
    start, end = line_ends[2], line_ends[3]  # every cut inside the fourth line, and right after it
    for cut in range(start, end + 1):
        summary, done_before, intact = _cut_and_resume(formula_model, out, full, cut)
        # the cuts land in the third record of the CSV (after its header line), the fourth of the JSONL
        expect_done = (2 if fmt == "csv" else 3) + (cut == end)
        assert len(done_before) == summary.resumed == expect_done, cut
        assert intact == (end if cut == end else start), cut
        assert summary.total == 12 and summary.ok == 12 - expect_done, cut
        _assert_same_run(out, full, intact)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_torn_tail_longer_than_the_rest_of_the_run_is_cut_not_overwritten(
    formula_folder: Path, formula_model: Classifier, fmt: str
) -> None:
    out = Path(f"r.{fmt}")
    full = _finished_run(formula_model, out)
    keep = _line_ends(full)[-3]  # all but the last two records
    out.unlink()
    partial_path(out).write_bytes(full[:keep] + b'{"path": "=x/' + b"x" * 4000)  # a long torn record
    summary = classify_to_file(formula_model, "=x", out, resume=True)
    assert summary.ok == 2 and summary.total == 12
    _assert_same_run(out, full, keep)


def _newline_folder(root: Path) -> None:
    for i, name in enumerate(["a.png", "line\nbreak.png", 'quo"te.png', "z.png"]):
        write_png(root / "=x" / name, seed=i)


def test_read_done_paths_cuts_a_record_torn_inside_a_quoted_path(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    _newline_folder(tmp_path)
    clf = Classifier(make_tiny_onnx(tmp_path / "m.onnx"))
    out = Path("r.csv")
    full = _finished_run(clf, out)
    start = full.index(b"\"'=x/line\n")  # the quoted record: "'=x/line<newline>break.png",...
    assert read_done_paths(out, "csv")[0] == {"=x/a.png", "=x/line\nbreak.png", '=x/quo"te.png', "=x/z.png"}
    for cut in (start + 3, start + 8, start + 12, start + 20):  # inside the quotes, past the newline, ...
        partial_path(out).write_bytes(full[:cut])
        done, intact = read_done_paths(partial_path(out), "csv")
        assert done == {"=x/a.png"} and intact == start, cut
        out.unlink(missing_ok=True)
        summary = classify_to_file(clf, "=x", out, resume=True)
        assert summary.resumed == 1 and summary.total == 4, cut
        assert sorted(csv_unescape(r["path"]) for r in _records(out)) == sorted(
            ["=x/a.png", "=x/line\nbreak.png", '=x/quo"te.png', "=x/z.png"]
        )
        _assert_same_run(out, full, intact)


def test_read_done_paths_cuts_a_record_torn_right_after_a_newline_inside_quotes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The torn record ends in a newline (the one inside its quotes): only a strict reader sees it is torn."""
    monkeypatch.chdir(tmp_path)
    _newline_folder(tmp_path)
    clf = Classifier(make_tiny_onnx(tmp_path / "m.onnx"))
    out = Path("r.csv")
    full = _finished_run(clf, out)
    start = full.index(b"\"'=x/line\n")
    cut = start + len(b"\"'=x/line\n")  # the kill landed just after the newline inside the quotes
    partial_path(out).write_bytes(full[:cut])
    done, intact = read_done_paths(partial_path(out), "csv")
    out.unlink(missing_ok=True)
    classify_to_file(clf, "=x", out, resume=True)
    assert (done, intact) == ({"=x/a.png"}, start)
    _assert_same_run(out, full, start)


def test_resume_without_a_partial_file_starts_over(formula_folder: Path, formula_model: Classifier) -> None:
    out = Path("r.jsonl")
    summary = classify_to_file(formula_model, "=x", out, resume=True)
    assert summary.resumed == 0 and summary.total == summary.ok == 12
    assert sorted(json.loads(x)["path"] for x in out.read_text().splitlines()) == _walked()


def test_writer_resumes_its_own_partial_file(tmp_path: Path) -> None:
    """ResultWriter alone, as the Ray driver uses it: rows written before an exception survive."""
    out = tmp_path / "r.csv"
    rows = [ClassifyRow(f"=p/{i}.png", label="=a", score=0.5, top_k=(("=a", 0.5),)) for i in range(6)]
    with pytest.raises(RuntimeError, match="driver died"), ResultWriter(out, flush_every=1) as writer:
        for row in rows[:4]:
            writer.write(row)
        raise RuntimeError("driver died")
    assert not out.exists()
    kept = partial_path(out).read_bytes()
    writer = ResultWriter(out, resume=True)
    assert writer.resumed == 4 and all(writer.is_done(r.path) for r in rows[:4]) and not writer.is_done(rows[4].path)
    with writer:
        for row in rows[4:]:
            writer.write(row)
        writer.commit()
    assert out.read_bytes()[: len(kept)] == kept
    assert [csv_unescape(r["path"]) for r in _records(out)] == [r.path for r in rows]
    assert writer.summary(1.0).to_dict() | {"seconds": 0} == {
        "out": str(out),
        "total": 6,
        "ok": 2,
        "errors": 0,
        "resumed": 4,
        "seconds": 0,
        "images_per_second": 2.0,
    }


def test_format_row_jsonl_is_one_line_even_with_newlines() -> None:
    line = format_row(ClassifyRow("a\nb.png", error_type="ImageError", error="x\ny"), "jsonl")
    assert line.count("\n") == 1 and json.loads(line)["path"] == "a\nb.png"


def test_resume_after_a_completed_run_classifies_only_new_files(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i in range(6):
        write_png(root / f"{i:02d}.png", seed=i)
    clf = Classifier(make_tiny_onnx(tmp_path / "m.onnx"))
    out = tmp_path / "r.csv"
    classify_to_file(clf, root, out)
    before = out.read_bytes()
    for i in range(6, 9):
        write_png(root / f"{i:02d}.png", seed=i)
    again = classify_to_file(clf, root, out, resume=True)
    assert (again.resumed, again.ok, again.total) == (6, 3, 9)
    assert out.read_bytes().startswith(before)
    paths = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert sorted(paths) == sorted(str(p) for p in root.iterdir()) and len(set(paths)) == 9
