"""The largest keras.applications exports are refused before conversion, naming the memory they need."""

from __future__ import annotations

import pytest

from edgecnn.errors import ExportError
from edgecnn.export.budget import check_export_fits, export_memory_needed

GB = 1 << 30


@pytest.mark.parametrize(
    ("name", "params"),
    [("convnext_large", 197_767_336), ("convnext_xlarge", 350_196_968)],  # keras.applications, include_top
)
def test_convnext_large_and_xlarge_are_refused_on_24_gb(name: str, params: int) -> None:
    with pytest.raises(ExportError, match=rf"{name}: exporting .*M parameters needs about \d+ GB of memory"):
        check_export_fits(name, params, 24 * GB)


def test_what_fits_passes() -> None:
    check_export_fits("resnet50", 25_636_712, 24 * GB)
    check_export_fits("efficientnetv2-l", 119_027_848, 24 * GB)  # ~15 GB: allowed on 24 GB
    assert export_memory_needed(197_767_336) > 24 * GB > export_memory_needed(119_027_848)
    check_export_fits("convnext_large", 197_767_336, 64 * GB)  # a bigger machine exports it
