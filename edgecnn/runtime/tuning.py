"""The tuning sidecar: the engine settings ``edgecnn tune`` measured fastest for one model on one machine.

``m.onnx`` gets ``m.tune.json`` beside it. A sidecar, not the model's metadata, because the winner belongs
to the machine, not to the model: rewriting the model would change its hash, and a model copied to another
machine must not carry settings measured elsewhere. ``Classifier`` and ``edgecnn bench`` use a sidecar
only when the model's sha256, the CPU, its core count and the onnxruntime version all match; otherwise
they fall back to the defaults and say why.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgecnn._fs import sha256_file, write_text_atomic
from edgecnn.errors import UsageError
from edgecnn.runtime.engine import EngineSettings, physical_cores
from edgecnn.runtime.environment import cpu_model
from edgecnn.runtime.session import SessionSettings

log = logging.getLogger(__name__)

TUNE_FORMAT = "edgecnn-tune/1"
MODES = ("latency", "throughput")


def tuning_path(model: str | Path) -> Path:
    """``m.onnx`` -> ``m.tune.json``."""
    model = Path(model)
    stem = model.name[: -len(".onnx")] if model.name.endswith(".onnx") else model.stem
    return model.with_name(f"{stem}.tune.json")


def machine_fingerprint() -> dict[str, Any]:
    """What a tuning result depends on besides the model."""
    return {"cpu": cpu_model(), "cores": physical_cores(), "onnxruntime": ort.__version__}


@dataclass(frozen=True)
class Tuning:
    """The winners per mode, with what was measured to pick them."""

    model_sha256: str
    machine: dict[str, Any]
    latency: EngineSettings
    throughput: EngineSettings
    throughput_batch: int
    measurements: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""

    def settings_for(self, mode: str) -> EngineSettings:
        return self.latency if mode == "latency" else self.throughput

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TUNE_FORMAT,
            "created": self.created or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model_sha256": self.model_sha256,
            "machine": self.machine,
            "latency": self.latency.to_dict(),
            "throughput": self.throughput.to_dict() | {"batch": self.throughput_batch},
            "measurements": self.measurements,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tuning:
        """Strict: a sidecar of another format or with bad settings is a UsageError."""
        if data.get("format") != TUNE_FORMAT:
            raise UsageError(f"not an edgecnn tuning file (format {data.get('format')!r}, expected {TUNE_FORMAT!r})")
        try:
            throughput = dict(data["throughput"])
            batch = int(throughput.pop("batch", 32))
            return cls(
                model_sha256=str(data["model_sha256"]),
                machine=dict(data["machine"]),
                latency=EngineSettings.from_dict(dict(data["latency"])),
                throughput=EngineSettings.from_dict(throughput),
                throughput_batch=batch,
                measurements=list(data.get("measurements", [])),
                created=str(data.get("created", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UsageError(f"tuning file is incomplete or malformed ({type(err).__name__}: {err})") from err


def save_tuning(model: str | Path, tuning: Tuning) -> Path:
    """Write ``m.tune.json`` atomically; returns its path."""
    path = tuning_path(model)
    write_text_atomic(path, json.dumps(tuning.to_dict(), indent=2) + "\n")
    return path


def load_tuning(model: str | Path, sidecar: str | Path | None = None) -> tuple[Tuning | None, str]:
    """The sidecar's tuning if it applies to this model on this machine, else None; and why, in words."""
    path = Path(sidecar) if sidecar is not None else tuning_path(model)
    if not path.is_file():
        return None, f"no tuning file ({path.name})"
    try:
        tuning = Tuning.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, UsageError) as err:
        return None, f"{path}: ignored, unreadable ({err})"
    if tuning.model_sha256 != sha256_file(model):
        return None, f"{path}: ignored, it was measured on another version of the model (re-run edgecnn tune)"
    here = machine_fingerprint()
    if tuning.machine != here:
        was = tuning.machine
        diff = ", ".join(f"{k} {was.get(k)!r}, here {v!r}" for k, v in here.items() if was.get(k) != v)
        return None, f"{path}: ignored, measured on another machine or runtime ({diff})"
    return tuning, f"tuned ({path.name})"


def choose_settings(
    model: str | Path,
    mode: str = "latency",
    *,
    threads: int | None = None,
    settings: SessionSettings | EngineSettings | None = None,
    tuning: bool | str | Path = True,
) -> tuple[EngineSettings, str]:
    """The engine settings to open ``model`` with, and where they came from.

    Explicit ``settings`` win; then the tuning sidecar (``tuning=True`` looks beside the model, a path
    names one, False ignores it); then the defaults of ``mode``. An explicit ``threads`` overrides the
    threads of tuned or default settings.
    """
    if mode not in MODES:
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(settings, SessionSettings):
        engine = EngineSettings(
            threads=settings.threads,
            spin=settings.spin,
            optimization=settings.optimization,
            spin_stop=settings.spin_stop,
            disabled_optimizers=settings.disabled_optimizers,
        )
        return engine, "explicit"
    if isinstance(settings, EngineSettings):
        return settings, "explicit"
    chosen: EngineSettings | None = None
    source = "default"
    if tuning is not False:
        found, why = load_tuning(model, None if tuning is True else tuning)
        if found is not None:
            chosen, source = found.settings_for(mode), why
        elif tuning is not True or "no tuning file" not in why:
            log.warning("%s", why)
    if chosen is None:
        chosen = EngineSettings.throughput() if mode == "throughput" else EngineSettings()
    if threads is not None:
        chosen = EngineSettings.from_dict(chosen.to_dict() | {"threads": threads})
    return chosen, source
