"""The exception tree: exit codes on the classes, builtin bases kept for `except ValueError` users."""

from __future__ import annotations

import pytest

from edgecnn import errors


@pytest.mark.parametrize(
    ("cls", "code", "builtin"),
    [
        (errors.ParityError, 4, None),
        (errors.AccuracyBudgetError, 4, None),
        (errors.BenchGateError, 4, None),
        (errors.UsageError, 2, None),
        (errors.InputError, 3, ValueError),
        (errors.ImageError, 3, ValueError),
        (errors.ModelNotFoundError, 3, FileNotFoundError),
        (errors.MissingDependencyError, 3, ImportError),
        (errors.ProviderError, 3, None),
        (errors.UnsafeModelError, 3, None),
    ],
)
def test_exit_codes_and_bases(cls: type[errors.EdgeCNNError], code: int, builtin: type | None) -> None:
    err = cls("photos/x.jpg: truncated", path="photos/x.jpg")
    assert isinstance(err, errors.EdgeCNNError)
    assert err.exit_code == code
    assert str(err) == "photos/x.jpg: truncated" and err.path == "photos/x.jpg"
    if builtin is not None:
        assert isinstance(err, builtin)


def test_every_error_is_exported() -> None:
    import edgecnn

    public = {name for name in dir(errors) if name.endswith("Error") or name == "CheckFailed"}
    assert public <= set(edgecnn.__all__)
    assert edgecnn.__all__ == sorted(set(edgecnn.__all__))


def test_missing_extra_names_the_pip_line() -> None:
    from edgecnn._optional import require

    with pytest.raises(errors.MissingDependencyError, match=r"pip install 'edgecnn\[train\]'"):
        require("edgecnn_no_such_module_xyz", extra="train")
