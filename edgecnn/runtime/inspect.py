"""What an ONNX file holds: IO, opsets, metadata, size, parameters, op histogram (``edgecnn info``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn._fs import sha256_file
from edgecnn.errors import MetadataError
from edgecnn.runtime.certificate import read_certificate
from edgecnn.runtime.contract import contract_problems
from edgecnn.runtime.metadata import ModelMetadata, props_of
from edgecnn.runtime.session import check_model_file


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    size_bytes: int
    sha256: str
    producer: str
    opsets: dict[str, int]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    parameters: int
    ops: dict[str, int]
    metadata: ModelMetadata | None
    metadata_error: str | None
    certificate: dict[str, Any] | None = None  # MODEL.certificate.json from `edgecnn certify`, for these bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "producer": self.producer,
            "opsets": self.opsets,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "parameters": self.parameters,
            "ops": self.ops,
            "metadata": None if self.metadata is None else self.metadata.to_dict(),
            "metadata_error": self.metadata_error,
            "certificate": self.certificate,
        }


def _shape(value_info: Any) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def _dtype(value_info: Any) -> str:
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).name


def describe_model(path: str | Path) -> ModelInfo:
    """Describe an ONNX file after vetting it like the engine does.

    Raises:
        ModelError: missing, malformed or unsafe file.
    """
    import numpy as np
    import onnx

    checked = check_model_file(path)
    model = onnx.load(str(checked), load_external_data=False)
    graph = model.graph
    init_names = {i.name for i in graph.initializer}
    tensors = list(graph.initializer) + [
        a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
    ]
    params = int(sum(int(np.prod(t.dims)) if len(t.dims) else 1 for t in tensors))
    try:
        meta: ModelMetadata | None = ModelMetadata.from_props(props_of(model))
        problems = contract_problems(model, meta)  # type: ignore[arg-type]
        meta_error = f"the model contradicts its metadata: {'; '.join(problems)}" if problems else None
    except MetadataError as err:
        meta, meta_error = None, str(err)
    sha256 = sha256_file(path)
    return ModelInfo(
        path=Path(path),
        size_bytes=Path(path).stat().st_size,
        sha256=sha256,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        opsets={o.domain or "ai.onnx": o.version for o in model.opset_import},
        inputs=[
            {"name": i.name, "shape": _shape(i), "dtype": _dtype(i)} for i in graph.input if i.name not in init_names
        ],
        outputs=[{"name": o.name, "shape": _shape(o), "dtype": _dtype(o)} for o in graph.output],
        parameters=params,
        ops=dict(Counter(n.op_type for n in graph.node).most_common()),
        metadata=meta,
        metadata_error=meta_error,
        certificate=read_certificate(path, sha256),
    )
