"""The Classifier facade: a few lines to classify images with an exported model, no TensorFlow needed.

Thread-safe: onnxruntime sessions may be run from several threads at once, and the Classifier keeps
no per-call state (IO bindings, when used, are per thread). Example::

    from edgecnn import Classifier

    clf = Classifier("exported/mnist-cnn.onnx")
    pred = clf.predict("digit.png")
    print(pred.label, pred.score)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from edgecnn.errors import InputError, ModelError
from edgecnn.runtime.contract import check_runtime_output, read_graph_metadata
from edgecnn.runtime.engine import Engine, EngineSettings
from edgecnn.runtime.images import load_image
from edgecnn.runtime.metadata import ModelMetadata
from edgecnn.runtime.postprocess import all_finite, to_probabilities, to_probabilities_rows, top_k
from edgecnn.runtime.preprocess import check_batch, draft_size, image_to_pixels, pixels_to_input
from edgecnn.runtime.providers import Provider
from edgecnn.runtime.session import SessionSettings, vet_model
from edgecnn.runtime.tuning import choose_settings

if TYPE_CHECKING:
    from edgecnn.runtime.rows import ClassifyRow

ImageLike = str | Path | Image.Image | np.ndarray


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answer: the best label, its probability, and the top-k."""

    label: str
    score: float
    index: int
    top_k: tuple[tuple[str, float], ...]
    probabilities: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": self.score,
            "index": self.index,
            "top_k": [{"label": lab, "score": s} for lab, s in self.top_k],
        }


class Classifier:
    """Classify images with an edgecnn-exported ONNX model.

    Args:
        path: the ``.onnx`` file (with edgecnn metadata; see ``edgecnn info``).
        provider: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``tensorrt``.
        threads: intra-op threads (per stream); None: the tuned or default choice.
        batch_size: large inputs are run in chunks of this many samples.
        allow_fallback: run on what is available instead of raising ProviderError.
        settings: explicit session or engine settings (win over tuning and ``mode``).
        mode: ``latency`` (one session, answers one request fast) or ``throughput`` (several
            single-threaded sessions run slices of each batch in parallel: for folders and bulk work).
        tuning: use ``MODEL.tune.json`` from ``edgecnn tune`` when it matches this model and machine
            (True), a given tuning file, or never (False).

    Raises:
        ModelError: missing, malformed, unsafe model, no/invalid edgecnn metadata, or metadata the graph
            contradicts (checked before any session runs).
        ProviderError: the provider asked for is not available, or onnxruntime could not initialise it.
    """

    def __init__(
        self,
        path: str | Path,
        provider: Provider | str = Provider.auto,
        threads: int | None = None,
        *,
        batch_size: int = 64,
        allow_fallback: bool = False,
        settings: SessionSettings | EngineSettings | None = None,
        mode: str = "latency",
        tuning: bool | str | Path = True,
        fast_decode: bool | None = None,
    ) -> None:
        self.path = Path(path)
        vetted = vet_model(self.path)
        self.metadata = read_graph_metadata(vetted[1], self.path)
        if fast_decode is not None:  # overrides the metadata's choice (README, "Fast decoding")
            pre = dataclasses.replace(self.metadata.preprocess, fast_decode=fast_decode)
            self.metadata = dataclasses.replace(self.metadata, preprocess=pre)
        self.engine_settings, self.settings_source = choose_settings(
            self.path, mode, threads=threads, settings=settings, tuning=tuning
        )
        self.engine = Engine(self.path, provider, self.engine_settings, allow_fallback=allow_fallback, vetted=vetted)
        del vetted  # the graph (with its weights) is not kept: the sessions hold what they need
        self.session = self.engine.session
        self.batch_size = max(1, int(batch_size))
        spec = self.metadata.input
        self._sample_shape = spec.sample_shape
        self._dtype = np.dtype(spec.dtype)
        self._output_checked = False

    # -- properties -------------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    @property
    def providers(self) -> list[str]:
        """Execution providers the session really uses, best first."""
        return list(self.session.get_providers())

    @property
    def certificate(self) -> dict[str, Any] | None:
        """``MODEL.certificate.json`` from ``edgecnn certify`` when it is for this model's bytes: on which CPUs
        the model was run and whether it answered the same there (None: never certified)."""
        if not hasattr(self, "_certificate"):
            from edgecnn.runtime.certificate import read_certificate

            self._certificate = read_certificate(self.path)
        return self._certificate

    @property
    def provider_warnings(self) -> tuple[str, ...]:
        """Why the providers differ from those asked for (a fallback that was allowed), if they do."""
        return self.engine.warnings

    def require_images(self) -> None:
        """Refuse image classification with a model whose input is not an image (a signal, a vector).

        Raises:
            ModelError: the model takes something else; ``predict_proba`` still serves it.
        """
        spec = self.metadata.input
        if not spec.is_image:
            raise ModelError(
                f"{self.path}: this model takes {spec.layout.value} inputs of shape {list(spec.sample_shape)}, "
                "not images; feed it arrays with Classifier.predict_proba",
                path=self.path,
            )

    def __repr__(self) -> str:
        return (
            f"Classifier({str(self.path)!r}, providers={self.providers}, classes={self.metadata.num_classes}, "
            f"engine={self.engine_settings.describe()!r} [{self.settings_source}])"
        )

    def close(self) -> None:
        """Stop the stream threads of throughput mode (a no-op in latency mode)."""
        self.engine.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the fast path ----------------------------------------------------------------------------
    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for an already-preprocessed batch in the model's layout.

        The hot path: a batch of the right dtype and shape costs one finiteness check (a dot product,
        which NaN and Inf poison) on top of the engine call; anything else goes through full validation.
        """
        x = self._checked(batch)
        if len(x) <= self.batch_size:
            return self._run(x)
        return np.concatenate([self._run(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)])

    __call__ = predict_proba  # a Classifier is a parity Predictor

    def _checked(self, batch: np.ndarray) -> np.ndarray:
        """The batch, validated: one finiteness check when dtype and shape already fit, else full validation."""
        if type(batch) is np.ndarray and batch.dtype == self._dtype and batch.shape[1:] == self._sample_shape:
            if not all_finite(batch):
                raise InputError("input contains NaN or Inf values; the model's answer would be meaningless")
            return batch
        return check_batch(batch, self.metadata.input)

    def predict_rows(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and a mask of the samples the model answered with finite numbers.

        For folders and servers, where one input that drives the model to NaN/Inf (a ``Sqrt`` of a negative
        for a dark image) must become that input's error, not its batch's: its row holds NaN and
        ``ok`` is False there. ``predict_proba`` raises ModelError for such a batch instead.
        """
        x = self._checked(batch)
        parts = [self._run(x[i : i + self.batch_size], rows=True) for i in range(0, len(x), self.batch_size)]
        return np.concatenate([p for p, _ in parts]), np.concatenate([ok for _, ok in parts])

    def _run(self, x: np.ndarray, rows: bool = False) -> Any:
        raw = self.engine.run(x)
        if not self._output_checked and len(raw):  # the output's width, where the graph left it symbolic
            check_runtime_output(raw, self.metadata, self.path)
            self._output_checked = True
        if rows:
            return to_probabilities_rows(raw, self.metadata.output)
        return to_probabilities(raw, self.metadata.output)

    # -- images -----------------------------------------------------------------------------------
    def preprocess(self, items: Sequence[ImageLike]) -> np.ndarray:
        """Images (paths, PIL images or uint8 pixel arrays) -> the model's input batch."""
        return pixels_to_input(np.stack([self.pixels(item) for item in items]), self.metadata)

    def pixels(self, item: ImageLike) -> np.ndarray:
        """One image -> uint8 (H, W, C) at the model's size and colour mode."""
        if isinstance(item, (str, Path)):
            spec = self.metadata.input
            item = load_image(item, draft_size=draft_size(spec.height, spec.width, self.metadata.preprocess))
        elif isinstance(item, np.ndarray):
            if item.dtype != np.uint8 or item.ndim not in (2, 3):
                raise InputError(f"expected a uint8 image array (H, W[, C]), got {item.dtype} {item.shape}")
            item = Image.fromarray(item if item.ndim == 2 or item.shape[2] != 1 else item[:, :, 0])
        elif not isinstance(item, Image.Image):
            raise InputError(f"cannot classify a {type(item).__name__}: give a path, PIL image or numpy array")
        return image_to_pixels(item, self.metadata)

    def predict(self, inputs: ImageLike | Sequence[ImageLike], top_k: int = 5) -> Prediction | list[Prediction]:
        """Classify one input or a batch.

        A path, PIL image, uint8 image array (H, W[, C]) or one preprocessed float sample gives one
        Prediction; a list of those, a uint8 batch (N, H, W[, C]) or a float batch in the model's
        layout gives a list. Float arrays are taken as already preprocessed.
        """
        single, batch = self._as_batch(inputs)
        preds = self.decode(self.predict_proba(batch), top_k)  # predict_proba runs it in batch_size chunks
        return preds[0] if single else preds

    def decode(self, probs: np.ndarray, k: int = 5) -> list[Prediction]:
        """Probabilities -> Predictions with labels."""
        idx, scores = top_k(probs, k)
        labels = self.metadata.labels
        # Python ints and floats once per batch (tolist), not one numpy scalar conversion per class
        return [
            Prediction(
                label=labels[i[0]],
                score=s[0],
                index=i[0],
                top_k=tuple(zip([labels[a] for a in i], s, strict=True)),
                probabilities=p,
            )
            for i, s, p in zip(idx.tolist(), scores.tolist(), probs, strict=True)
        ]

    def _as_batch(self, inputs: Any) -> tuple[bool, np.ndarray]:
        spec = self.metadata.input
        if isinstance(inputs, np.ndarray):
            if inputs.dtype.kind == "f":
                if not inputs.size:
                    raise InputError(f"nothing to classify: the input array {tuple(inputs.shape)} is empty")
                single = inputs.shape == spec.sample_shape
                if inputs.dtype == self._dtype and (single or inputs.shape[1:] == self._sample_shape):
                    return single, inputs[None] if single else inputs  # predict_proba's fast path checks it
                return single, check_batch(inputs, spec)
            if inputs.dtype == np.uint8:
                # (H, W) or (H, W, 1|3|4) is one image; (N, H, W) and (N, H, W, C) are batches
                single = inputs.ndim == 2 or (inputs.ndim == 3 and inputs.shape[-1] in (1, 3, 4))
                items: list[Any] = [inputs] if single else list(inputs)
                return single, self.preprocess(items)
            raise InputError(f"expected float (preprocessed) or uint8 (pixels) arrays, got {inputs.dtype}")
        if isinstance(inputs, (str, Path, Image.Image)):
            return True, self.preprocess([inputs])
        if isinstance(inputs, Iterable):
            items = list(inputs)
            if not items:
                raise InputError("nothing to classify: the input list is empty")
            return False, self.preprocess(items)
        raise InputError(f"cannot classify a {type(inputs).__name__}")

    def classify_paths(self, paths: Iterable[str | Path], **kwargs: Any) -> Iterator[ClassifyRow]:
        """One row per path, in order, as they come; unreadable files become error rows.

        Keyword arguments: ``top_k``, ``batch_size``, ``workers`` (decode threads).
        """
        from edgecnn.runtime.folder import classify_paths

        self.require_images()
        return classify_paths(self, (str(p) for p in paths), **kwargs)

    def classify_folder(self, folder: str | Path, *, recursive: bool = True, **kwargs: Any) -> Iterator[ClassifyRow]:
        """One row per non-hidden file under ``folder`` (sorted walk), as they come."""
        from edgecnn.runtime.folder import classify_folder

        self.require_images()
        return classify_folder(self, folder, recursive=recursive, **kwargs)

    def iter_predict(self, items: Iterable[ImageLike], top_k: int = 5) -> Iterator[Prediction]:
        """Predict lazily over a long iterable, one batch at a time."""
        chunk: list[ImageLike] = []
        for item in items:
            chunk.append(item)
            if len(chunk) == self.batch_size:
                yield from self.predict(chunk, top_k)  # type: ignore[misc]
                chunk = []
        if chunk:
            yield from self.predict(chunk, top_k)  # type: ignore[misc]


def read_metadata(path: str | Path) -> ModelMetadata:
    """The edgecnn metadata of an ONNX file, checked against its graph, without creating a session.

    Raises:
        ModelError: missing, malformed or unsafe file; missing, invalid or contradicted metadata.
    """
    _, model = vet_model(path)
    return read_graph_metadata(model, path)
