"""The metadata contract: strict parsing, round trips, and fuzzing with arbitrary text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgecnn.errors import MetadataError
from edgecnn.runtime.metadata import (
    KEY_INPUT,
    KEY_LABELS,
    InputSpec,
    Layout,
    ModelMetadata,
    OutputKind,
    PreprocessSpec,
)

META = ModelMetadata(
    labels=("cat", "dog"),
    input=InputSpec("input", Layout.NHWC, 180, 180, 3),
    preprocess=PreprocessSpec(scale=1.0, model_rescales=True),
    output=OutputKind.sigmoid,
    source={"keras": "3.15.1"},
    quantization={"mode": "int8"},
)


def test_round_trip() -> None:
    props = META.to_props()
    assert all(isinstance(v, str) for v in props.values())
    assert ModelMetadata.from_props(props) == META


def test_missing_keys_are_named() -> None:
    props = META.to_props()
    del props[KEY_LABELS]
    with pytest.raises(MetadataError, match=r"edgecnn\.labels"):
        ModelMetadata.from_props(props)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        (KEY_LABELS, "not json", "not valid JSON"),
        (KEY_LABELS, '"a"', "expected a JSON list"),
        (KEY_INPUT, '{"name": "x", "layout": "NHWC", "height": -1, "width": 2, "channels": 3}', "height"),
        (KEY_INPUT, '{"name": "x", "layout": "XYZ", "height": 1, "width": 2, "channels": 3}', "XYZ"),
        ("edgecnn.version", "2", "unsupported contract version"),
    ],
)
def test_invalid_values_raise_metadata_error(key: str, value: str, fragment: str) -> None:
    props = META.to_props()
    props[key] = value
    with pytest.raises(MetadataError, match=fragment):
        ModelMetadata.from_props(props)


def test_sigmoid_needs_two_labels() -> None:
    with pytest.raises(MetadataError, match="exactly 2 labels"):
        ModelMetadata(labels=("a", "b", "c"), input=META.input, output=OutputKind.sigmoid)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["edgecnn.labels", "edgecnn.input", "edgecnn.preprocess", "edgecnn.output", "edgecnn.version"]),
        st.one_of(st.text(max_size=30), json_values.map(json.dumps)),
    )
)
def test_fuzzed_props_give_metadata_or_metadata_error(props: dict[str, str]) -> None:
    """Untrusted text becomes objects here: only MetadataError may escape, and valid results round-trip."""
    try:
        meta = ModelMetadata.from_props(props)
    except MetadataError:
        return
    assert ModelMetadata.from_props(meta.to_props()) == meta


@settings(max_examples=200, deadline=None)
@given(
    labels=st.lists(st.text(min_size=1, max_size=5), min_size=2, max_size=6, unique=True),
    h=st.integers(1, 64),
    w=st.integers(1, 64),
    layout=st.sampled_from([Layout.NHWC, Layout.NCHW]),
    channels=st.sampled_from([1, 3]),
    scale=st.floats(-10, 10, allow_nan=False),
)
def test_valid_metadata_round_trips(
    labels: list[str], h: int, w: int, layout: Layout, channels: int, scale: float
) -> None:
    meta = ModelMetadata(
        labels=tuple(labels),
        input=InputSpec("input", layout, h, w, channels),
        preprocess=PreprocessSpec(scale=scale),
        output=OutputKind.logits,
    )
    assert ModelMetadata.from_props(meta.to_props()) == meta
