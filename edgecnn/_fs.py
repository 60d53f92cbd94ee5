"""Atomic file writes and hashing: an interrupted command never leaves a half-written artefact.

Everything edgecnn writes (models, reports, result files) goes to a temporary file in the target's
folder, is fsync'ed, then renamed over the target with ``os.replace``. Stdlib only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".edgecnn-tmp-"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it the only portable way, and put it straight back
    os.umask(mask)
    return mask


def _final_mode(target: Path) -> int:
    """The permissions a plain ``open(target, "w")`` would leave: the existing file's, else 0o666 & ~umask.

    ``mkstemp`` creates its file 0o600 so that nobody reads it half-written; the rename would carry that
    private mode over to the artefact, making a model unreadable to the server user it was exported for.
    """
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_current_umask()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove temporary files left beside ``target`` by writers that were killed (their pid is gone)."""
    removed = []
    for tmp in target.parent.glob(f"{TMP_PREFIX}{target.name}.*"):
        try:
            pid = int(tmp.name[len(TMP_PREFIX) + len(target.name) + 1 :].split(".", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def check_output_file(target: str | Path) -> Path:
    """Make sure ``target`` can be written as a file: its folder exists (made if missing), it is no folder.
    Entry points call it before their work starts, so a bad output costs no minutes of conversion.

    Raises:
        UsageError: ``target`` is a folder.
        InputError: its folder cannot be made (a file in the way, no permission).
    """
    from edgecnn.errors import InputError, UsageError

    target = Path(target)
    if target.is_dir():
        raise UsageError(f"{target}: is a folder; give a file name", path=target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{target}: cannot make its folder ({err.strerror or err})", path=target) from None
    return target


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    For libraries that write by path (``onnx.save``, ``keras.Model.save``). On any exception,
    including KeyboardInterrupt, the temporary file is removed and ``target`` is left as it was.
    A writer killed outright (SIGKILL) leaves its temporary file; the next write of the same
    target removes it (the name carries the writer's pid).
    """
    target = check_output_file(target)
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{TMP_PREFIX}{target.name}.{os.getpid()}.", suffix=suffix or target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, _final_mode(target))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(target: str | Path, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``target`` for writing; rename it over ``target`` on success."""
    with atomic_path(target) as tmp, open(tmp, mode, **open_kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_write(target, "wb") as fh:
        fh.write(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_write(target, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def variant_path(model: str | Path, variant: str) -> Path:
    """The one place artefact names are derived: ``m.onnx`` + ``int8`` -> ``m.int8.onnx``."""
    model = Path(model)
    stem = model.name[: -len(".onnx")] if model.name.endswith(".onnx") else model.stem
    return model.with_name(f"{stem}.{variant}.onnx")


def relative_to_folder(target: str | Path, folder: str | Path) -> str:
    """``target`` as a path relative to ``folder`` (``/`` separators): what artefacts record instead of
    an absolute path, which would leak the writing machine's layout and break when the folder moves."""
    try:
        return Path(os.path.relpath(Path(target).resolve(), Path(folder).resolve())).as_posix()
    except ValueError:  # another drive (Windows): the name is all that travels
        return Path(target).name


def resolve_recorded(recorded: str, *folders: str | Path) -> Path:
    """A path an artefact recorded: absolute ones (older files) as they are, relative ones from the first
    of ``folders`` where they exist (else from the first folder)."""
    path = Path(recorded)
    if path.is_absolute() or not folders:
        return path
    candidates = [Path(f) / path for f in folders]
    return next((c for c in candidates if c.exists()), candidates[0])
