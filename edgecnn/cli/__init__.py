"""The ``edgecnn`` command line: a thin layer over the library (one library call per command)."""

from __future__ import annotations

import importlib

from edgecnn.cli._app import app

# Each module registers its commands on ``app``; they import heavy libraries only inside command bodies.
_COMMAND_MODULES = (
    "zoo",
    "train",
    "export",
    "parity",
    "info",
    "quantize",
    "bench",
    "classify",
    "demo",
    "doctor",
    "tune",
    "serve",
    "annotate",
    "certify",
)
for _name in _COMMAND_MODULES:
    importlib.import_module(f"edgecnn.cli.{_name}")


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
