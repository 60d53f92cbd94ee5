"""Rendering shared by every command: rich tables on the terminal, JSON for machines.

Libraries return data (dataclasses with ``to_dict()``); only the CLI calls these.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgecnn._fs import write_text_atomic

_console: Console | None = None


def console() -> Console:
    """The stdout console (tables); progress and errors go to stderr."""
    global _console
    if _console is None:
        import shutil
        import sys

        width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120
        _console = Console(highlight=False, soft_wrap=False, width=width)
    return _console


def err_console() -> Console:
    """stderr: notes and progress; a note is one line however long (soft wrap), so logs and greps keep it whole."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers as a person reads them in a table."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(1, digits - 2)}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, justify: Sequence[str] | None = None
) -> None:
    """A titled table on stdout (first column left, numbers right unless ``justify`` says otherwise)."""
    # user text (paths, labels) is escaped: Rich would read "[x]" in "photos[x]/a.png" as markup and drop it
    table = Table(title=escape(title), title_justify="left", show_lines=False)
    for i, col in enumerate(columns):
        table.add_column(escape(col), justify=(justify[i] if justify else ("left" if i == 0 else "right")))  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(escape(fmt(v)) for v in row))
    console().print(table)


def print_kv(title: str, items: Iterable[tuple[str, Any]]) -> None:
    """A two-column key/value table."""
    print_table(title, ("", "value"), items, justify=("left", "left"))


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_default, allow_nan=False) + "\n"


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "value"):
        return obj.value
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = to_json(_finite(data))
    write_text_atomic(path, text)
    return Path(path)


def _finite(data: Any) -> Any:
    """NaN/Inf are not JSON: turn them into None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    if hasattr(data, "to_dict"):
        return _finite(data.to_dict())
    return data


FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".svg": "svg", ".pdf": "pdf"}


def figure_format(path: str | Path) -> str:
    """The image format a chart path asks for by its suffix (checked before any work starts).

    Raises:
        UsageError: a suffix matplotlib would not write as that format.
    """
    from edgecnn.errors import UsageError

    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise UsageError(f"{path}: a chart is written as {', '.join(FIGURE_FORMATS)}; got {suffix or 'no suffix'!r}")
    return FIGURE_FORMATS[suffix]


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically in the format its suffix names (PNG, JPEG, SVG, PDF), then close it."""
    from edgecnn._fs import atomic_path

    fmt_name = figure_format(path)
    with atomic_path(path, suffix=Path(path).suffix.lower()) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt_name)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return Path(path)
