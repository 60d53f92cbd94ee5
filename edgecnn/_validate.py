"""Range checks shared by the config dataclasses and library entry points: one line naming the value and
what is allowed, as a UsageError (exit 2), so the Python API and the CLI refuse the same inputs. Stdlib only."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from edgecnn.errors import UsageError


def at_least(name: str, value: int | float | None, minimum: int | float = 1) -> None:
    """Refuse ``value`` below ``minimum`` (None passes: it means "the default")."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name} must be a number >= {minimum}, got {value!r}")
    if value != value or value < minimum:  # NaN compares false to everything
        raise UsageError(f"{name} must be >= {minimum}, got {value}")


def positive(name: str, value: float | None) -> None:
    """Refuse zero, negative and NaN values (None passes)."""
    if value is None:
        return
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{name} must be a positive finite number, got {value}")


def known_names(option: str, given: Iterable[str], known: Iterable[str], what: str = "name") -> None:
    """Refuse names not in ``known``, suggesting close matches."""
    pool = sorted(set(known))
    unknown = [g for g in given if g not in set(pool)]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, pool, n=3)
        hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    raise UsageError(f"{option}: unknown {what}(s) {', '.join(hints)}")
