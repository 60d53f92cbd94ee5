"""Raw model outputs -> probabilities and top-k, by the output kind the metadata declares."""

from __future__ import annotations

import math

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.runtime.metadata import OutputKind

_F32 = np.dtype(np.float32)  # comparing with a dtype instance costs a third of comparing with np.float32


def all_finite(a: np.ndarray) -> bool:
    """True when ``a`` holds no NaN or Inf; costs one BLAS dot product (~0.5 µs on a small batch).

    NaN and Inf poison a dot product of the array with itself; an absurdly large finite value
    (> 1e19) may overflow it (numpy then warns), so a non-finite dot only sends us to the exact check.
    """
    if a.dtype == _F32:  # BLAS: no floating-point warnings on overflow
        flat = a.ravel()  # a view of a contiguous array; ravel costs a third of reshape(-1) per call
        return math.isfinite(flat.dot(flat)) or bool(np.isfinite(a).all())
    return bool(np.isfinite(a).all())


def to_probabilities(raw: np.ndarray, kind: OutputKind) -> np.ndarray:
    """(N, K) softmax/logits or (N, 1) sigmoid -> (N, classes) float32 probabilities.

    Raises:
        ModelError: the model produced NaN or Inf (argmax would silently pick class 0).
    """
    if raw.dtype != _F32:
        raw = raw.astype(np.float32)
    if raw.ndim != 2:
        raw = raw.reshape(raw.shape[0], -1) if raw.ndim > 1 else raw[:, None]
    if not all_finite(raw):
        bad = int((~np.isfinite(raw)).any(axis=1).sum())
        raise ModelError(f"the model produced NaN/Inf outputs for {bad} of {raw.shape[0]} samples")
    if kind is OutputKind.softmax:  # the common case first: already probabilities, returned as they are
        return raw
    if kind == OutputKind.sigmoid:
        p = raw[:, :1]
        return np.concatenate([1.0 - p, p], axis=1)
    if kind == OutputKind.logits:
        z = raw - raw.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z
    return raw


def finite_rows(raw: np.ndarray) -> np.ndarray:
    """Boolean mask (N,) of the rows of a raw output that hold no NaN or Inf."""
    flat = raw.reshape(raw.shape[0], -1)
    if all_finite(flat):
        return np.ones(flat.shape[0], bool)
    return np.isfinite(flat).all(axis=1)


def to_probabilities_rows(raw: np.ndarray, kind: OutputKind) -> tuple[np.ndarray, np.ndarray]:
    """Like ``to_probabilities``, but rows with NaN/Inf outputs become NaN rows instead of an error.

    Returns (probabilities, ok): ``ok[i]`` is False where the model's output for sample i was not finite.
    """
    ok = finite_rows(raw)
    if ok.all():
        return to_probabilities(raw, kind), ok
    clean = np.where(ok.reshape(-1, *([1] * (raw.ndim - 1))), raw, 0).astype(np.float32)
    probs = to_probabilities(clean, kind)
    probs[~ok] = np.nan
    return probs, ok


def top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best classes per row, best first (stable for ties)."""
    k = max(1, min(k, probs.shape[1]))
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return idx, probs[np.arange(len(probs))[:, None], idx]  # take_along_axis, without its Python overhead
