"""Classify every file of a folder: one row per file, errors as rows, decode overlapped with inference.

The walk is sorted and deterministic, never follows symlinked folders (no loops), reports unreadable
folders as rows, and only opens regular files (a FIFO would hang). Decoding and resizing run in a
thread pool (Pillow releases the GIL) while the main thread runs batches through the session.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgecnn.errors import EdgeCNNError, InputError, ModelError, NonFiniteOutputError
from edgecnn.runtime.metadata import ModelMetadata
from edgecnn.runtime.results import ResultWriter, model_identity
from edgecnn.runtime.rows import ClassifyRow, ClassifySummary


class FolderClassifier(Protocol):
    """What the pipeline asks of a classifier (``edgecnn.runtime.Classifier`` is one): ``Classifier``'s
    ``classify_folder``/``classify_paths`` call down into this module, so it names no class above it."""

    path: Path
    metadata: ModelMetadata

    def require_images(self) -> None: ...
    def pixels(self, item: Any) -> np.ndarray: ...
    def predict_rows(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def decode(self, probs: np.ndarray, k: int = 5) -> list[Any]: ...


NON_FINITE_MESSAGE = "{path}: the model's output for this image is NaN/Inf: no score can be given"


def walk_files(root: str | Path, recursive: bool = True) -> Iterator[tuple[str, str | None]]:
    """Yield (path, None) for each non-hidden entry, or (path, error) for folders that cannot be read.

    Sorted for a deterministic order; symlinked folders are not entered (no loops); broken links and
    special files are yielded so that they become error rows.
    """
    root = os.fspath(root)
    errors: list[OSError] = []

    def onerror(err: OSError) -> None:
        errors.append(err)

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
        while errors:
            err = errors.pop(0)
            yield os.fspath(err.filename or dirpath), f"unreadable folder ({err.strerror or err})"
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for d in links:
            dirnames.remove(d)
        entries = sorted([*filenames, *links])
        for name in entries:
            if not name.startswith("."):
                yield os.path.join(dirpath, name), None
        if not recursive:
            dirnames[:] = []
    while errors:
        err = errors.pop(0)
        yield os.fspath(err.filename or root), f"unreadable folder ({err.strerror or err})"


def _decode(clf: FolderClassifier, path: str) -> np.ndarray | EdgeCNNError:
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            return InputError(f"{path}: a folder (symbolic link to a folder; not followed)", path=path)
        return clf.pixels(path)
    except EdgeCNNError as err:
        return err
    except FileNotFoundError:
        return InputError(f"{path}: no such file (or a broken link)", path=path)
    except Exception as err:  # the per-file boundary: one bad file must not stop the folder
        return InputError(f"{path}: {type(err).__name__}: {err}", path=path)


def check_options(*, top_k: int = 5, batch_size: int = 32, workers: int | None = None) -> None:
    """Refuse a batch, top-k or worker count below 1 (UsageError), before any work starts."""
    from edgecnn._validate import at_least

    at_least("--batch (batch_size)", batch_size)
    at_least("--top-k (top_k)", top_k)
    at_least("--workers (workers)", workers)


def require_files(folder: str | Path, recursive: bool = True) -> None:
    """Refuse a folder that is not one, or holds nothing to classify (a run must not succeed doing nothing).

    Raises:
        InputError: not a folder, or no non-hidden entry in it.
    """
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: not a folder", path=folder)
    if next(iter(walk_files(folder, recursive)), None) is None:
        where = "" if recursive else " (at its top level; subfolders need --recursive)"
        raise InputError(f"{folder}: no files to classify{where}; hidden files are skipped", path=folder)


def classify_paths(
    clf: FolderClassifier,
    paths: Iterable[str | tuple[str, str | None]],
    *,
    top_k: int = 5,
    batch_size: int = 32,
    workers: int | None = None,
) -> Iterator[ClassifyRow]:
    """Rows for ``paths`` in order: decode in a pool, infer in batches, errors become rows.

    The next batch's images are already decoding in the pool while the current batch runs through
    the model, so decoding and inference overlap.

    Raises:
        UsageError: ``top_k``, ``batch_size`` or ``workers`` below 1 (at the call, not at the first row).
    """
    check_options(top_k=top_k, batch_size=batch_size, workers=workers)
    return _classify_paths(clf, paths, top_k=top_k, batch_size=batch_size, workers=workers)


def _classify_paths(
    clf: FolderClassifier,
    paths: Iterable[str | tuple[str, str | None]],
    *,
    top_k: int,
    batch_size: int,
    workers: int | None,
) -> Iterator[ClassifyRow]:
    from collections import deque

    from edgecnn.runtime.preprocess import pixels_to_input

    workers = workers or min(8, (os.cpu_count() or 2))
    items = iter((p, None) if isinstance(p, (str, os.PathLike)) else p for p in paths)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgecnn-decode") as pool:
        queue: deque[tuple[str, Any]] = deque()

        def fill() -> None:  # keep up to two batches submitted ahead
            while len(queue) < 2 * batch_size:
                item = next(items, None)
                if item is None:
                    return
                path, walk_error = os.fspath(item[0]), item[1]
                if walk_error is not None:
                    queue.append((path, InputError(f"{path}: {walk_error}", path=path)))
                else:
                    queue.append((path, pool.submit(_decode, clf, path)))

        fill()
        seen = {"finite": False}  # has the model answered any file with finite numbers yet?
        while queue:
            batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
            fill()
            yield from _infer(clf, batch, top_k, pixels_to_input, seen)


def _infer(
    clf: FolderClassifier, pending: list[tuple[str, Any]], top_k: int, pixels_to_input: Any, seen: dict[str, bool]
) -> Iterator[ClassifyRow]:
    """Wait for a batch's decodes, run the good ones through the model, yield rows in order.

    A file the model answers with NaN/Inf gets a ``NonFiniteOutput`` error row; a model that has answered
    every file so far (two or more) that way is refused (ModelError): it is broken, not the files.
    """
    results = [(p, f.result() if hasattr(f, "result") else f) for p, f in pending]
    good = [(p, r) for p, r in results if isinstance(r, np.ndarray)]
    preds: dict[str, Any] = {}
    if good:
        try:
            batch = pixels_to_input(np.stack([r for _, r in good]), clf.metadata)
            probs, ok = clf.predict_rows(batch)
        except InputError as err:  # the batch's data, not the model: every file of it gets the error
            for p, _ in good:
                preds[p] = err
        else:
            if not ok.any() and len(ok) > 1 and not seen["finite"]:
                raise ModelError(
                    f"{clf.path}: the model produced NaN/Inf outputs for all {len(ok)} images of its first batch "
                    f"({good[0][0]}, ...): it is broken, not the images",
                    path=clf.path,
                )
            seen["finite"] = seen["finite"] or bool(ok.any())
            decoded = iter(clf.decode(probs[ok], top_k)) if ok.any() else iter(())
            for (p, _), fine in zip(good, ok, strict=True):
                preds[p] = next(decoded) if fine else NonFiniteOutputError(NON_FINITE_MESSAGE.format(path=p), path=p)
    for p, r in results:
        out = preds.get(p, r)
        if isinstance(out, EdgeCNNError):
            yield ClassifyRow(p, error_type=getattr(out, "error_type", type(out).__name__), error=str(out))
        else:
            yield ClassifyRow(p, label=out.label, score=out.score, top_k=out.top_k)


def classify_folder(
    clf: FolderClassifier, folder: str | Path, *, recursive: bool = True, **kwargs: Any
) -> Iterator[ClassifyRow]:
    """Rows for every non-hidden file under ``folder`` (sorted walk).

    Raises:
        InputError: ``folder`` is not a readable folder.
    """
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: not a folder", path=folder)
    check_options(**kwargs)
    return classify_paths(clf, walk_files(folder, recursive), **kwargs)


def classify_to_file(
    clf: FolderClassifier,
    folder: str | Path,
    out: str | Path,
    *,
    resume: bool = False,
    recursive: bool = True,
    on_row: Any = None,
    **kwargs: Any,
) -> ClassifySummary:
    """Classify ``folder`` into ``out`` (.csv or .jsonl) through the resumable ``ResultWriter``.

    A model that fails while running (ModelError) stops the run: the rows already written stay in
    ``out.partial`` and ``resume=True`` continues once the model is fixed.

    Raises:
        UsageError: ``top_k``/``batch_size``/``workers`` below 1; ``resume`` over a partial file that another
            model wrote.
        InputError: ``folder`` is not a folder or holds no files, or ``out`` has an unknown suffix.
        ModelError: the model failed on a batch.
    """
    import time

    check_options(**kwargs)
    clf.require_images()
    model = model_identity(clf.path, clf.metadata.labels)
    writer = ResultWriter(out, resume=resume, flush_every=kwargs.get("batch_size", 32), model=model)
    require_files(folder, recursive)
    pending = ((p, e) for p, e in walk_files(folder, recursive) if not writer.is_done(p))
    t0 = time.perf_counter()
    with writer:
        for row in classify_paths(clf, pending, **kwargs):
            writer.write(row)
            if on_row is not None:
                on_row(row)
        writer.commit()
    return writer.summary(time.perf_counter() - t0)
