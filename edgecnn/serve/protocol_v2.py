"""The KServe V2 / Open Inference Protocol over HTTP, as Triton, OVMS and MLServer speak it.

JSON tensors (``data`` as a flat or nested list, row-major) and the binary tensor extension that
``tritonclient`` uses with ``binary_data=True``: the body is a JSON header of ``Inference-Header-Content-Length``
bytes followed by the raw little-endian tensors, each input naming its ``binary_data_size``. Pure functions:
no web framework here, so the parsing is tested without a server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.errors import InputError
from edgecnn.runtime.metadata import ModelMetadata

OUTPUT_NAME = "probabilities"
HEADER_LENGTH = "Inference-Header-Content-Length"
DATATYPES = {"float32": "FP32", "float16": "FP16", "uint8": "UINT8"}
_NUMPY_OF = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8, "FP64": np.float64, "INT32": np.int32}


class ProtocolError(InputError):
    """A V2 request that does not fit the protocol or the model (400)."""


def model_metadata(
    name: str, meta: ModelMetadata, platform: str = "onnxruntime_onnx", certificate: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs and outputs with -1 for the batch axis; the model's CPU certificate
    (verdict, targets, agreement, onnxruntime version, date; no paths) as a parameter when there is one."""
    spec = meta.input
    extra: dict[str, Any] = {}
    if certificate:
        keep = ("verdict", "samples", "min_agreement", "native", "onnxruntime", "date")
        targets = {k: v.get("agreement_native") for k, v in (certificate.get("targets") or {}).items()}
        extra["parameters"] = {"edgecnn.certificate": {**{k: certificate.get(k) for k in keep}, "targets": targets}}
    return {
        **extra,
        "name": name,
        "versions": ["1"],
        "platform": platform,
        "inputs": [{"name": spec.name, "datatype": DATATYPES[spec.dtype], "shape": [-1, *spec.sample_shape]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, meta.num_classes]}],
    }


@dataclass(frozen=True, slots=True)
class InferRequest:
    id: str | None
    array: np.ndarray
    binary_output: bool
    outputs: tuple[str, ...]


def parse_infer_request(body: bytes, header_length: str | None, meta: ModelMetadata) -> InferRequest:
    """Decode a V2 infer request for ``meta``'s model into one array of shape (N, *sample_shape).

    Raises:
        ProtocolError: malformed JSON, wrong input name, datatype, shape or data size.
    """
    header, binary = _split(body, header_length)
    try:
        request = json.loads(header)
    except (UnicodeDecodeError, ValueError) as err:
        raise ProtocolError(f"infer request is not valid JSON ({err})") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise ProtocolError("infer request must be a JSON object with an 'inputs' list")
    spec = meta.input
    inputs = request["inputs"]
    if len(inputs) != 1:
        raise ProtocolError(f"the model takes exactly one input ({spec.name!r}), got {len(inputs)}")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise ProtocolError("each input must be a JSON object")
    if tensor.get("name") != spec.name:
        raise ProtocolError(f"unknown input {tensor.get('name')!r}; the model's input is {spec.name!r}")
    want_type = DATATYPES[spec.dtype]
    if tensor.get("datatype") != want_type:
        raise ProtocolError(f"input {spec.name!r} has datatype {tensor.get('datatype')!r}; the model takes {want_type}")
    shape = tensor.get("shape")
    want = spec.sample_shape
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or len(shape) != len(want) + 1
        or tuple(shape[1:]) != want
        or shape[0] < 1
    ):
        raise ProtocolError(f"input {spec.name!r} has shape {shape}; the model takes [N, {', '.join(map(str, want))}]")
    dtype = np.dtype(_NUMPY_OF[want_type]).newbyteorder("<")
    array = _tensor_data(tensor, binary, shape, dtype)
    binary_output, outputs = _requested_outputs(request)
    rid = request.get("id")
    return InferRequest(str(rid) if rid is not None else None, array, binary_output, outputs)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        raise ProtocolError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
    if not 0 < n <= len(body):
        raise ProtocolError(f"{HEADER_LENGTH} is {n}, but the body has {len(body)} bytes")
    return body[:n], body[n:]


def _tensor_data(tensor: dict[str, Any], binary: bytes, shape: list[int], dtype: np.dtype[Any]) -> np.ndarray:
    count = int(np.prod(shape))
    params = tensor.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if size != count * dtype.itemsize or len(binary) != size:
            raise ProtocolError(
                f"binary input holds {len(binary)} bytes (binary_data_size {size}); shape {shape} "
                f"{DATATYPES.get(dtype.name, dtype.name)} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(binary, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    if binary:
        raise ProtocolError("the body carries binary data but the input names no binary_data_size")
    data = tensor.get("data")
    if data is None:
        raise ProtocolError("input has neither 'data' nor parameters.binary_data_size")
    try:
        flat = np.asarray(data, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ProtocolError(f"input data is not a list of numbers ({err})") from None
    if flat.size != count:
        raise ProtocolError(f"input data has {flat.size} values; shape {shape} needs {count}")
    return flat.reshape(shape).astype(dtype.newbyteorder("="))


def _requested_outputs(request: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
    params = request.get("parameters") or {}
    binary = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    names: list[str] = []
    for out in request.get("outputs") or []:
        if not isinstance(out, dict) or out.get("name") != OUTPUT_NAME:
            name = out.get("name") if isinstance(out, dict) else out
            raise ProtocolError(f"unknown output {name!r}; the model's output is {OUTPUT_NAME!r}")
        names.append(OUTPUT_NAME)
        out_params = out.get("parameters") or {}
        if isinstance(out_params, dict) and "binary_data" in out_params:
            binary = bool(out_params["binary_data"])
    return binary, tuple(names) or (OUTPUT_NAME,)


def encode_infer_response(name: str, request: InferRequest, probs: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """The V2 response body and its extra headers (binary: JSON header + raw FP32 probabilities)."""
    probs = np.ascontiguousarray(probs, dtype="<f4")
    output: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": "FP32", "shape": list(probs.shape)}
    response: dict[str, Any] = {"model_name": name, "model_version": "1", "outputs": [output]}
    if request.id is not None:
        response["id"] = request.id
    if not request.binary_output:
        output["data"] = probs.reshape(-1).tolist()
        return json.dumps(response).encode(), {"Content-Type": "application/json"}
    raw = probs.tobytes()
    output["parameters"] = {"binary_data_size": len(raw)}
    header = json.dumps(response).encode()
    return header + raw, {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
