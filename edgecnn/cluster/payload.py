"""The model as bytes, vetted once on the driver and shipped to every actor through the object store.

No shared path is needed for the model: each actor writes the payload into a private temporary folder and
opens it from there. A model with external data travels with its data files (vetted by the runtime to lie
inside the model's folder), under the same relative names, so the copy opens exactly like the original.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import ModelError

MAX_PAYLOAD_BYTES = 2 * 1024**3  # what one object-store object comfortably carries; larger: a shared path


@dataclass(frozen=True, slots=True)
class ModelPayload:
    """An ONNX file and its external-data files, by name relative to the model's folder."""

    name: str
    files: tuple[tuple[str, bytes], ...]
    source: str = ""  # the path on the driver, for messages

    @property
    def nbytes(self) -> int:
        return sum(len(data) for _, data in self.files)

    @classmethod
    def from_path(cls, path: str | Path) -> ModelPayload:
        """Vet ``path`` with the runtime's checks and read it (and its external data) into memory.

        Raises:
            ModelError: the runtime refuses the file, or it is too large to ship.
        """
        from edgecnn.runtime.session import vet_model

        resolved, model = vet_model(path)
        files = [(resolved.name, resolved.read_bytes())]
        for location in sorted(_external_locations(model)):
            files.append((location, (resolved.parent / location).read_bytes()))
        payload = cls(resolved.name, tuple(files), source=str(path))
        if payload.nbytes > MAX_PAYLOAD_BYTES:
            raise ModelError(
                f"{path}: model and external data are {payload.nbytes:,} bytes, too large to ship through "
                "Ray's object store; put it on a path every node can read",
                path=path,
            )
        return payload

    def materialize(self) -> Path:
        """Write the files into a new private folder; return the model's path there."""
        folder = Path(tempfile.mkdtemp(prefix="edgecnn-model-"))
        for name, data in self.files:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        return folder / self.name


def _external_locations(model: object) -> set[str]:
    """Relative locations of every external-data file the graph refers to (already vetted)."""
    from onnx.external_data_helper import uses_external_data

    graph = model.graph  # type: ignore[attr-defined]
    tensors = list(graph.initializer)
    for node in graph.node:
        tensors.extend(attr.t for attr in node.attribute if attr.HasField("t"))
    locations = set()
    for tensor in tensors:
        if uses_external_data(tensor):
            locations.update(e.value for e in tensor.external_data if e.key == "location")
    return locations
