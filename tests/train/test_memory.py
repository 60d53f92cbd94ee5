"""The memory budget: sizes, the batch-size choice and its reasons, the CPU precision note (no TensorFlow)."""

from __future__ import annotations

import pytest

from edgecnn.errors import UsageError
from edgecnn.train.memory import (
    BatchChoice,
    StepMemory,
    choose_batch_size,
    cpu_precision,
    default_budget,
    machine_memory,
    parse_size,
    peak_rss,
)

GB = 1 << 30
MB = 1 << 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6GB", 6 * GB),
        ("6g", 6 * GB),
        ("6", 6 * GB),
        ("512MB", 512 * MB),
        ("1.5GiB", int(1.5 * GB)),
        (" 2 gb ", 2 * GB),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "six", "6 parsecs", "-1GB", "10KB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--memory-budget"):
        parse_size(text)


def test_default_budget_is_a_quarter_of_the_machine() -> None:
    assert default_budget() == machine_memory() // 4
    assert 0 < peak_rss() < machine_memory()


def test_default_batch_when_it_fits() -> None:
    step = StepMemory(fixed=1 * GB, per_sample=10 * MB)
    choice = choose_batch_size(step, budget=6 * GB, default=64)
    assert choice.batch_size == 64 and choice.fits and choice.warning is None
    assert "default 64: fits the budget 6.0 GB" in choice.reason
    assert choice.estimated == step.at(64)


def test_largest_batch_that_fits_the_budget() -> None:
    step = StepMemory(fixed=1 * GB, per_sample=100 * MB)
    choice = choose_batch_size(step, budget=6 * GB, default=64)
    usable = 6 * GB * 0.9
    assert step.at(choice.batch_size) <= usable < step.at(choice.batch_size + 1)
    assert choice.batch_size == 45
    assert "largest that fits the budget 6.0 GB" in choice.reason and "default 64 would need 7.2 GB" in choice.reason
    assert choice.to_dict()["batch_size"] == 45 and choice.to_dict()["fits"] is True


def test_requested_batch_wins_and_is_warned_about() -> None:
    step = StepMemory(fixed=1 * GB, per_sample=100 * MB)
    choice = choose_batch_size(step, budget=6 * GB, default=64, requested=128)
    assert choice.batch_size == 128 and not choice.fits
    assert choice.warning is not None and "--batch-size 128 needs about 13.5 GB" in choice.warning
    assert "batch 45 would fit" in choice.warning
    ok = choose_batch_size(step, budget=6 * GB, default=64, requested=8)
    assert ok == BatchChoice(8, "--batch-size 8 (asked for)", 6 * GB, step.at(8), True)


def test_nothing_fits() -> None:
    step = StepMemory(fixed=5 * GB, per_sample=2 * GB)
    with pytest.raises(UsageError, match=r"one training sample needs about 7\.0 GB.*raise --memory-budget"):
        choose_batch_size(step, budget=6 * GB, default=64)
    warned = choose_batch_size(step, budget=6 * GB, default=64, requested=1)
    assert warned.warning is not None and "not even batch 1 fits" in warned.warning


def test_cpu_precision_names_bf16_support() -> None:
    precision, why = cpu_precision()
    assert precision == "float32"
    assert "bf16" in why
