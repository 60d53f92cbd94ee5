"""The resumable results file of folder classification: one record per path, never half-written.

Shared by every producer of rows (the local pipeline, a Ray cluster): rows go to ``OUT.partial``, flushed
and fsync'ed per batch, and ``OUT.partial`` is renamed to ``OUT`` when the run completes. A run that stops
(kill -9, a broken model) leaves ``OUT.partial``; ``--resume`` cuts a torn last record and skips every path
already recorded, so each path ends up exactly once. ``--resume`` after a completed run continues ``OUT``
itself: only files added since get rows.

CSV cells that a spreadsheet would run as a formula get a leading ``'``; a value that itself starts with
``'`` gets one too, so the escape is reversible and resume recognises every path.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from edgecnn.errors import InputError
from edgecnn.runtime.rows import ClassifyRow, ClassifySummary

CSV_FIELDS = ("path", "label", "score", "top_k", "error_type", "error")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def printable(text: str) -> str:
    """A file name that is not valid UTF-8 (surrogate escapes from os.fsdecode) in backslash form."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _has_surrogates(text) else text


def csv_escape(text: str | None) -> str:
    """Neutralise spreadsheet formulas (reversibly) and keep undecodable file names printable."""
    if text is None:
        return ""
    text = printable(text)
    return "'" + text if text[:1] in _FORMULA_START else text


def csv_unescape(text: str) -> str:
    """The inverse of ``csv_escape`` for a printable value."""
    return text[1:] if text[:1] == "'" else text


def record_path(path: str) -> str:
    """The path as a results file records it (what resume compares against)."""
    return printable(path)


def format_row(row: ClassifyRow, fmt: str) -> str:
    """One output record (CSV line or JSON line), newline-terminated."""
    if fmt == "jsonl":
        d = row.to_dict()
        d["path"] = record_path(row.path)
        return json.dumps(d, ensure_ascii=False) + "\n"
    buf = io.StringIO()
    top = ";".join(f"{lab}:{s:.6f}" for lab, s in row.top_k)
    csv.writer(buf, lineterminator="\n").writerow(
        [
            csv_escape(row.path),
            csv_escape(row.label),
            "" if row.score is None else f"{row.score:.6f}",
            csv_escape(top),
            row.error_type or "",
            csv_escape(row.error),
        ]
    )
    return buf.getvalue()


def read_done_paths(partial: Path, fmt: str) -> tuple[set[str], int]:
    """Paths already recorded in a partial output, and the byte length of its intact part.

    A torn last record (the process was killed mid-write, possibly inside a quoted CSV field that holds
    a newline) is not counted and is cut off.
    """
    if not partial.is_file():
        return set(), 0
    data = partial.read_bytes()
    end = data.rfind(b"\n") + 1
    done: set[str] = set()
    if fmt == "jsonl":
        for line in data[:end].decode("utf-8", "replace").splitlines():
            try:
                done.add(json.loads(line)["path"])
            except (ValueError, KeyError, TypeError):
                continue
        return done, end
    # CSV: walk whole records, so a newline inside a quoted path is not mistaken for a record's end
    text = data.decode("utf-8", "replace")
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, strict=True)  # strict: end of data inside quotes raises instead of a short record
    intact_chars = 0
    while True:
        try:
            rec = next(reader)
        except (StopIteration, csv.Error):
            break
        position = stream.tell()
        if position == 0 or text[position - 1] != "\n" or len(rec) != len(CSV_FIELDS):
            break  # torn: no final newline, or cut inside a quoted field (a path with a newline)
        intact_chars = position
        if rec != list(CSV_FIELDS):
            done.add(csv_unescape(rec[0]))
    return done, len(text[:intact_chars].encode("utf-8"))


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def model_record_path(out: Path) -> Path:
    """The hidden sidecar naming the model that wrote ``OUT`` / ``OUT.partial`` (what ``resume`` checks)."""
    return out.with_name(f".{out.name}.model.json")


def model_identity(model: str | Path, labels: tuple[str, ...] | list[str]) -> dict[str, str]:
    """A model as a results file records it: file name, a hash of its labels, the file's sha256 (no path).

    Rows of two models must not mix in one file; a model fixed in place (same name, same labels, new
    weights) may continue its own run, so the file's hash is recorded but not compared.
    """
    from edgecnn._fs import sha256_bytes, sha256_file

    return {
        "name": Path(model).name,
        "labels_sha256": sha256_bytes("\n".join(labels).encode("utf-8")),
        "sha256": sha256_file(model),
    }


def output_format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise InputError(f"{out}: output must end in .csv or .jsonl", path=out)
    return suffix[1:]


class ResultWriter:
    """Append rows to ``OUT.partial``; ``commit()`` renames it to ``OUT``.

    Use as a context manager. Leaving the block by an exception flushes what was written and keeps the
    partial file (the rows already there survive for ``resume``); only ``commit()`` publishes ``OUT``.

    Args:
        out: the results file, ``.csv`` or ``.jsonl``.
        resume: continue an earlier ``OUT.partial`` instead of starting over.
        flush_every: rows between fsyncs (a killed run loses at most these, and resume redoes them).
    """

    def __init__(
        self, out: str | Path, *, resume: bool = False, flush_every: int = 32, model: dict[str, str] | None = None
    ) -> None:
        self.out = Path(out)
        self.format = output_format(self.out)
        self.partial = partial_path(self.out)
        # resume continues OUT.partial; after a completed run it continues OUT itself (new files only)
        self._resume_from: Path | None = None
        if resume:
            self._resume_from = self.partial if self.partial.is_file() else self.out if self.out.is_file() else None
        self.done, self._intact = (
            read_done_paths(self._resume_from, self.format) if self._resume_from is not None else (set(), 0)
        )
        self.resumed = len(self.done)
        self.model = model  # model_identity(): resume refuses a file another model wrote
        if self._resume_from is not None and self.model is not None:
            self._check_same_model(self._resume_from)
        self.counts = {"ok": 0, "errors": 0}
        self.flush_every = max(1, flush_every)
        self._raw: IO[bytes] | None = None
        self._fh: io.TextIOWrapper | None = None
        self._since_flush = 0

    def _check_same_model(self, resume_from: Path) -> None:
        """Refuse to resume a results file that another model wrote (rows of two models would mix)."""
        from edgecnn.errors import UsageError

        try:
            recorded = json.loads(model_record_path(self.out).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # written before models were recorded: nothing to compare
        if not isinstance(recorded, dict) or self.model is None:
            return
        if all(recorded.get(k) == self.model[k] for k in ("name", "labels_sha256")):
            return
        what = "" if recorded.get("name") != self.model["name"] else " with other labels"
        raise UsageError(
            f"{resume_from}: written by model {recorded.get('name')}{what}, not {self.model['name']}; "
            "classify into another file, or drop --resume to start over",
            path=resume_from,
        )

    def is_done(self, path: str) -> bool:
        """Whether ``path`` already has a row from an earlier (resumed) run."""
        return record_path(path) in self.done

    def __enter__(self) -> ResultWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if not self._intact and self.partial.exists():
            self.partial.unlink()
        if self._intact and self._resume_from == self.out:
            shutil.copyfile(self.out, self.partial)  # OUT stays whole until commit() replaces it
        raw = open(self.partial, "r+b" if self._intact else "wb")
        raw.truncate(self._intact)
        raw.seek(self._intact)
        self._raw = raw
        self._fh = io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", newline="")
        if self.format == "csv" and self._intact == 0:
            self._fh.write(",".join(CSV_FIELDS) + "\n")
        if self.model is not None:
            from edgecnn._fs import write_text_atomic

            write_text_atomic(model_record_path(self.out), json.dumps(self.model) + "\n")
        return self

    def write(self, row: ClassifyRow) -> None:
        assert self._fh is not None, "use ResultWriter as a context manager"
        self._fh.write(format_row(row, self.format))
        self.counts["ok" if row.ok else "errors"] += 1
        self._since_flush += 1
        if self._since_flush >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self._fh is not None and self._raw is not None:
            self._fh.flush()
            os.fsync(self._raw.fileno())
            self._since_flush = 0

    def commit(self) -> None:
        """Publish the complete results: flush, close, rename ``OUT.partial`` to ``OUT``."""
        self._close()
        os.replace(self.partial, self.out)

    def _close(self) -> None:
        if self._fh is not None:
            self.flush()
            self._fh.detach()
            self._fh = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()

    def summary(self, seconds: float, cluster: dict[str, Any] | None = None) -> ClassifySummary:
        return ClassifySummary(
            out=str(self.out),
            total=self.resumed + self.counts["ok"] + self.counts["errors"],
            ok=self.counts["ok"],
            errors=self.counts["errors"],
            resumed=self.resumed,
            seconds=seconds,
            cluster=cluster,
        )
