"""Refuse an export that cannot fit the machine before conversion starts, naming the memory it needs.

tf2onnx copies every constant several times (the frozen graph, the ONNX proto, its optimizer passes, the
serialised file), so conversion memory grows with the parameter count: ConvNeXtLarge (197.8M parameters) ran
out of memory on a 24 GB machine (README, "Export notes"), i.e. more than ~120 bytes a parameter.
"""

from __future__ import annotations

from edgecnn.errors import ExportError

# resident bytes an export holds per parameter, at least (from the one ConvNeXtLarge observation above)
EXPORT_BYTES_PER_PARAM = 128
# the process before conversion: TensorFlow, tf2onnx, onnxruntime imported
EXPORT_BASE_BYTES = 1 << 30


def export_memory_needed(params: int) -> int:
    """Bytes an export of a model with ``params`` parameters needs, estimated."""
    return EXPORT_BASE_BYTES + EXPORT_BYTES_PER_PARAM * params


def check_export_fits(name: str, params: int, machine_bytes: int) -> None:
    """Raise before conversion when the estimate exceeds the machine's memory.

    Raises:
        ExportError: the export would need more memory than the machine has.
    """
    need = export_memory_needed(params)
    if need > machine_bytes:
        gb = 1 << 30
        raise ExportError(
            f"{name}: exporting {params / 1e6:.1f}M parameters needs about {need / gb:.0f} GB of memory "
            f"({EXPORT_BYTES_PER_PARAM} bytes a parameter while tf2onnx converts), more than this machine's "
            f"{machine_bytes / gb:.0f} GB; export it on a machine with at least {need / gb:.0f} GB"
        )
