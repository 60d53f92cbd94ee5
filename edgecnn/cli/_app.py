"""The typer app and the CLI's single error boundary; command modules register on ``app``.

Command modules import only typer, enums and ``edgecnn.errors`` at module level; each command imports
its library function inside its body, so ``edgecnn --help`` stays fast and TensorFlow-free.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from edgecnn.errors import EdgeCNNError

app = typer.Typer(
    name="edgecnn",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,  # help is plain text: 'edgecnn[ray]' stays itself, no '<bool>' metavars
    help="Take a Keras image CNN to a fast, verified ONNX model: train, export, quantize, parity, bench, classify.",
)

F = TypeVar("F", bound=Callable[..., Any])


def debug_enabled() -> bool:
    return os.environ.get("EDGECNN_DEBUG", "") not in ("", "0")


def exits_on_error(func: F) -> F:
    """Turn an EdgeCNNError into one line on stderr and its exit code; with EDGECNN_DEBUG=1 the traceback
    is printed first and the exit code stays the same (scripts must not see another code when debugging)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            _check_report_outputs(kwargs)
            return func(*args, **kwargs)
        except EdgeCNNError as err:
            if debug_enabled():
                import traceback

                traceback.print_exc()
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        from edgecnn._version import __version__

        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


REPORT_OUTPUTS = ("json_out", "json_summary", "report_md", "plot")  # files the CLI writes after the work


def _check_report_outputs(kwargs: dict[str, Any]) -> None:
    """A report file that cannot be written is refused before the work, not after it."""
    from edgecnn._fs import check_output_file

    for name in REPORT_OUTPUTS:
        value = kwargs.get(name)
        if value is not None and not isinstance(value, bool):
            check_output_file(value)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks and the libraries' own logs (same as EDGECNN_DEBUG=1)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    if debug:
        os.environ["EDGECNN_DEBUG"] = "1"
    if not debug_enabled():
        _quiet_libraries()
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not (debug_enabled() or verbose):
        handler.addFilter(_edgecnn_or_error)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def _edgecnn_or_error(record: Any) -> bool:
    """The quiet terminal: edgecnn's own warnings; a library's (TensorFlow's deprecation notes, tf2onnx,
    onnxruntime's quantizer logging to the root logger) only when it is an error. --debug/-v show them all."""
    import logging

    return record.name == "edgecnn" or record.name.startswith("edgecnn.") or record.levelno >= logging.ERROR


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str = "", *args: Any, **kwargs: Any
) -> None:
    """One ``warning: …`` line for edgecnn's warnings; a library's own (TensorFlow's deprecations, TFLite's
    converter notes) is its business, shown with --debug."""
    where = filename.replace("\\", "/")
    if ("/site-packages/" in where or "/dist-packages/" in where) and "/edgecnn/" not in where:
        return
    typer.echo(f"warning: {message}", err=True)


def _quiet_libraries() -> None:
    """The terminal shows edgecnn's own lines: onnxruntime's C++ log off (its errors come back as our
    messages), TensorFlow's start-up chatter filtered, warnings as one ``warning: …`` line each."""
    import warnings

    from edgecnn._optional import quiet_tensorflow_imports

    quiet_tensorflow_imports()
    warnings.showwarning = _show_warning
    from edgecnn.runtime.session import quiet_onnxruntime

    quiet_onnxruntime()  # also covers sessions edgecnn does not create (the quantizer's calibration runs)


def parse_ints(text: str, option: str = "--batch") -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32), with a usage error naming the option."""
    from edgecnn.errors import UsageError

    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"{option}: expected positive integers, got {text!r}")
    return values
