"""The certificate ``edgecnn certify`` writes beside a model (``MODEL.certificate.json``): on which CPUs the
model was run and whether it answered the same there as on the certifying host.

It lives beside the model, not in it, so certifying never changes the model's hash; it names the model by
sha256, and a certificate for other bytes (the model was re-quantized since) is ignored. Stdlib only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CERTIFICATE_SUFFIX = ".certificate.json"


def certificate_path(model: str | Path) -> Path:
    """``dir/name.int8.onnx`` -> ``dir/name.int8.certificate.json``."""
    p = Path(model)
    return p.with_name(p.stem + CERTIFICATE_SUFFIX)


def read_certificate(model: str | Path, sha256: str | None = None) -> dict[str, Any] | None:
    """The certificate beside ``model`` when it is for these bytes (``sha256``, computed when not given), else None."""
    path = certificate_path(model)
    if not path.is_file():
        return None
    try:
        cert = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cert, dict):
        return None
    if sha256 is None:
        from edgecnn._fs import sha256_file

        sha256 = sha256_file(model)
    return cert if cert.get("model", {}).get("sha256") == sha256 else None


def summarize_certificate(cert: dict[str, Any]) -> str:
    """One line: verdict, the targets and their agreement, onnxruntime version, date."""
    verdict = {True: "PASS", False: "FAIL"}.get(cert.get("passed"), "INCONCLUSIVE")
    targets = ", ".join(
        f"{name} {row.get('agreement_native', 0):.1%}" for name, row in (cert.get("targets") or {}).items()
    )
    return (
        f"{verdict} on {targets} (n={cert.get('samples')}, bar {cert.get('min_agreement', 0):.1%}; "
        f"onnxruntime {cert.get('onnxruntime')}, {cert.get('date', '?')[:10]})"
    )
