"""Calibration uses what it is given: all of a set smaller than the default, exact counts when asked."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from conftest import make_tiny_onnx

from edgecnn.errors import InputError
from edgecnn.quantize.calibration import DEFAULT_CALIBRATION_SAMPLES, RECOMMENDED_MIN_SAMPLES, load_calibration
from edgecnn.runtime import read_metadata

SHIPPED = Path(__file__).resolve().parents[2] / "calibration" / "mnist"  # 200 digits, 20 per class


@pytest.fixture(scope="module")
def digit_meta(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    labels = tuple(str(i) for i in range(10))
    return read_metadata(make_tiny_onnx(tmp_path_factory.mktemp("m") / "d.onnx", labels=labels, size=28, channels=1))


def test_default_calibrates_on_every_image_of_a_smaller_set(digit_meta) -> None:  # type: ignore[no-untyped-def]
    assert DEFAULT_CALIBRATION_SAMPLES > 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 200 >= the recommended minimum: no warning
        x = load_calibration(SHIPPED, digit_meta)
    assert x.shape == (200, 28, 28, 1)


def test_explicit_count_is_exact(digit_meta) -> None:  # type: ignore[no-untyped-def]
    x = load_calibration(SHIPPED, digit_meta, 120)
    assert len(x) == 120
    with pytest.raises(InputError, match="asked for 300 samples but it holds 200; add images or lower --samples"):
        load_calibration(SHIPPED, digit_meta, 300)


def test_few_samples_warn(digit_meta) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(UserWarning, match=f"calibrating on 30 samples; about {RECOMMENDED_MIN_SAMPLES}"):
        x = load_calibration(SHIPPED, digit_meta, 30)
    assert len(x) == 30


def test_negative_accuracy_budget_is_a_usage_error(tmp_path: Path) -> None:
    from edgecnn.errors import UsageError
    from edgecnn.quantize import search_within_budget

    with pytest.raises(UsageError, match=">= 0, got -1"):
        search_within_budget(make_tiny_onnx(tmp_path / "m.onnx"), None, -1.0, calibration=None, eval_data="digits")


# -- any folder of images: flat or nested, labels not needed, unreadable files skipped and counted (#24) --
def _flat(root: Path, n: int, size: int = 28) -> Path:
    from conftest import write_png

    for i in range(n):
        write_png(root / f"IMG_{i:04d}.png", size=(size + i % 5, size), mode="RGB", seed=i)
    return root


def test_a_flat_unlabelled_folder_calibrates(digit_meta, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.quantize.calibration import load_calibration_set

    folder = _flat(tmp_path / "photos", 120)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 120 >= the recommended minimum: no warning
        cal = load_calibration_set(folder, digit_meta)
    assert cal.x.shape == (120, 28, 28, 1) and cal.found == 122 and len(cal.skipped) == 2
    assert "2 unreadable skipped" in cal.describe()


def test_nested_folders_of_any_names_calibrate_balanced(digit_meta, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.quantize.calibration import load_calibration_set

    _flat(tmp_path / "trip" / "day1", 80)
    _flat(tmp_path / "trip" / "day2" / "evening", 30)  # names that are no class of the model
    with pytest.warns(UserWarning, match="calibrating on 40 samples"):
        cal = load_calibration_set(tmp_path / "trip", digit_meta, 40)
    assert len(cal.x) == 40 and "balanced over subfolders" in cal.describe()  # 20 of each folder, in turn


def test_few_images_warn_with_the_numbers_and_too_few_fail(digit_meta, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.quantize.calibration import MIN_CALIBRATION_SAMPLES, load_calibration_set

    folder = _flat(tmp_path / "few", 12)
    with pytest.warns(UserWarning, match=r"calibrating on 12 samples; about 100 .*\(12 samples of .*12 found\)"):
        load_calibration_set(folder, digit_meta)
    for i in range(5):
        (folder / f"bad{i}.png").write_bytes(b"nope")
    for f in sorted(folder.glob("IMG_*.png"))[: 12 - MIN_CALIBRATION_SAMPLES + 1]:
        f.unlink()
    with pytest.raises(InputError, match=f"only {MIN_CALIBRATION_SAMPLES - 1} readable samples .*5 unreadable"):
        load_calibration_set(folder, digit_meta)


def test_quantize_from_a_flat_folder_records_what_it_skipped(tmp_path: Path) -> None:
    from edgecnn.quantize import QuantizeConfig, quantize

    model = make_tiny_onnx(tmp_path / "m.onnx", labels=tuple("abc"), size=8)
    folder = _flat(tmp_path / "device", 100, size=8)
    (folder / "corrupt.png").write_bytes(b"\x89PNG broken")
    r = quantize(model, tmp_path / "m.int8.onnx", QuantizeConfig.int8(), calibration=str(folder), measure_speed=False)
    assert r.quantization["calibration_samples"] == 100 and r.quantization["calibration_skipped"] == 1
    assert any("1 unreadable file(s) skipped" in w for w in r.warnings)
