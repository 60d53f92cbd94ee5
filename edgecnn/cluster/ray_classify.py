"""Classify a folder on a Ray cluster into the same resumable results file as a local run.

The driver lists the folder (``walk_files``, as locally), drops the paths an earlier run already recorded
(``ResultWriter.is_done``), and hands the pending paths to Ray Data (an Arrow table of paths): decoding happens in
the actors with the runtime's loader, so a corrupt or unreadable file is that file's error row instead of
a failed read task or a dropped block. Results come back in the walk's order (``preserve_order``) and go
through the runtime's ``ResultWriter``: the same columns, error rows, ``.partial`` file, atomic rename and
``--resume`` as the local path.

Faults: actors restart and their tasks retry (set explicitly below), so a dead worker process or node
costs time, not rows; the driver is the single point of failure and ``resume`` continues after it.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.cluster.actors import PATH, ROW, WALK_ERROR, WORKER, ActorSettings, ClassifyActor, decode_row
from edgecnn.cluster.connect import (
    ClusterError,
    ClusterInfo,
    check_address,
    check_reachable,
    prepare_environment,
    ray_session,
    silence_orphaned_connect,
)
from edgecnn.errors import EdgeCNNError, UsageError
from edgecnn.runtime.folder import walk_files
from edgecnn.runtime.results import ResultWriter, model_identity, output_format
from edgecnn.runtime.rows import ClassifyRow, ClassifySummary

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RayConfig:
    """Where and how wide to run.

    Args:
        address: ``auto`` (``RAY_ADDRESS``, or a local cluster started for the run) or ``HOST:PORT``.
        actors: actor pool size; None: the cluster's CPUs // ``cpus_per_actor`` (at least 1).
        cpus_per_actor: CPUs each actor reserves, and the intra-op threads of its session.
        rows_per_call: paths per actor call; larger amortises Ray's per-call cost, smaller loses less
            work to a dead actor and keeps the driver's progress smooth.
    """

    address: str = "auto"
    actors: int | None = None
    cpus_per_actor: int = 1
    rows_per_call: int = 256
    connect_timeout_s: float = 30.0  # joining an existing cluster (HOST:PORT or RAY_ADDRESS)

    def __post_init__(self) -> None:
        if not 0 < self.connect_timeout_s < float("inf"):
            raise UsageError(f"--ray-timeout must be a number of seconds > 0, got {self.connect_timeout_s}")
        object.__setattr__(self, "address", check_address(self.address))
        if self.actors is not None and self.actors < 1:
            raise UsageError(f"--ray-actors must be >= 1, got {self.actors}")
        if self.cpus_per_actor < 1:
            raise UsageError(f"--ray-cpus-per-actor must be >= 1, got {self.cpus_per_actor}")
        if self.rows_per_call < 1:
            raise UsageError(f"rows_per_call must be >= 1, got {self.rows_per_call}")


def classify_on_ray(
    model: str | Path,
    folder: str | Path,
    out: str | Path,
    config: RayConfig | None = None,
    *,
    resume: bool = False,
    recursive: bool = True,
    top_k: int = 5,
    batch_size: int = 32,
    workers: int | None = None,
    on_row: Callable[[ClassifyRow], None] | None = None,
) -> ClassifySummary:
    """Classify every file under ``folder`` on a Ray cluster into ``out`` (.csv or .jsonl).

    The folder must be readable under the same path on every node (a shared filesystem); a file a node
    cannot read becomes that file's error row. The model needs no shared path: it is vetted here and
    shipped to the actors as bytes.

    Raises:
        InputError: ``folder`` is not a folder, or ``out`` has an unknown suffix.
        ModelError: the model is refused here, or failed on a batch in an actor (rows so far stay in
            ``out.partial``; ``resume=True`` continues).
        ClusterError: the cluster cannot be reached or lost the job.
        MissingDependencyError: the ``[ray]`` extra is not installed.
    """
    from edgecnn._optional import require
    from edgecnn.cluster.payload import ModelPayload
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.folder import check_options, require_files

    config = config or RayConfig()
    check_options(top_k=top_k, batch_size=batch_size, workers=workers)
    check_reachable(config.address)  # seconds, not minutes, when nothing answers there (before importing ray)
    prepare_environment(config.address)  # Ray reads these switches when it is imported
    require("ray", extra="ray")
    output_format(Path(out))  # an unknown suffix before the model loads
    require_files(folder, recursive)
    clf = Classifier(model, provider="cpu", threads=1, tuning=False)  # metadata and session, on the driver
    identity = model_identity(model, clf.metadata.labels)
    clf.close()
    writer = ResultWriter(out, resume=resume, flush_every=batch_size, model=identity)
    payload = ModelPayload.from_path(model)
    pending = _pending_table((p, e) for p, e in walk_files(folder, recursive) if not writer.is_done(p))
    settings = ActorSettings(threads=config.cpus_per_actor, top_k=top_k, batch_size=batch_size, workers=workers)
    try:
        with _quiet_ray_core(), ray_session(config.address, config.connect_timeout_s) as info:
            summary = _classify(info, writer, pending, payload, settings, config, on_row)
    except ClusterError:
        silence_orphaned_connect()  # the filter above restored fd 2; a stuck connect thread still logs
        raise
    return summary


def _classify(
    info: ClusterInfo,
    writer: ResultWriter,
    pending: Any,
    payload: Any,
    settings: ActorSettings,
    config: RayConfig,
    on_row: Callable[[ClassifyRow], None] | None,
) -> ClassifySummary:
    """The run on a connected cluster: rows in the walk's order into ``writer``."""
    actors = config.actors or max(1, int(info.cpus // config.cpus_per_actor))
    t0 = time.perf_counter()
    used: set[str] = set()
    with writer:
        for row, worker in _run(pending, payload, settings, config, actors):
            writer.write(row)
            used.add(worker)
            if on_row is not None:
                on_row(row)
        writer.commit()
    seconds = time.perf_counter() - t0
    return writer.summary(seconds, cluster=_cluster_summary(info, config, actors, used))


def _quiet_ray_core() -> Any:
    """Ray's C++ core logs to the driver's fd 2 (log-level notes, actor restart caveats): held back, as
    they come, unless --debug."""
    import contextlib

    from edgecnn._optional import live_filtered_native_stderr
    from edgecnn.cluster.connect import RAY_NATIVE_LOG, connect_given_up

    if os.environ.get("EDGECNN_DEBUG", "") not in ("", "0"):
        return contextlib.nullcontext()
    # a connect thread given up on goes on logging its retries: then the filter stays until the process ends
    # (restoring fd 2 first, even for the moment before silence_orphaned_connect, let a retry line through)
    return live_filtered_native_stderr(RAY_NATIVE_LOG, restore=lambda: not connect_given_up())


def _pending_table(items: Iterator[tuple[str, str | None]], chunk: int = 65_536) -> Any:
    """The paths to classify as an Arrow table (bytes, ~60 B a path; Python dicts would cost ~5x)."""
    import pyarrow as pa

    paths: list[bytes] = []
    errors: list[str] = []
    parts: list[Any] = []
    for path, walk_error in items:
        paths.append(os.fsencode(path))  # Arrow strings cannot hold undecodable names: bytes travel
        errors.append(walk_error or "")
        if len(paths) == chunk:
            parts.append(pa.table({PATH: pa.array(paths, pa.binary()), WALK_ERROR: pa.array(errors, pa.string())}))
            paths, errors = [], []
    parts.append(pa.table({PATH: pa.array(paths, pa.binary()), WALK_ERROR: pa.array(errors, pa.string())}))
    return pa.concat_tables(parts)


def _run(pending: Any, payload: Any, settings: ActorSettings, config: RayConfig, actors: int) -> Any:
    """Yield (row, worker) in the walk's order from an actor pool running ``ClassifyActor``."""
    if not pending.num_rows:
        return
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the local run's order: the two outputs diff cleanly
    ctx.enable_progress_bars = False  # the driver shows its own bar
    ctx.print_on_execution_start = False
    per_call = max(1, min(config.rows_per_call, math.ceil(pending.num_rows / actors)))  # a small folder: every actor
    blocks = math.ceil(pending.num_rows / per_call)
    actors = min(actors, blocks)  # an actor without a block would only cost a session
    ds = ray.data.from_arrow(pending, override_num_blocks=blocks)
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for actor fault tolerance yet and flags **ray_remote_args as
        # deprecated; its defaults are the same, but the retry contract is ours, so it is stated here.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*", category=DeprecationWarning)
        ds = ds.map_batches(
            ClassifyActor,
            fn_constructor_args=(ray.put(payload), settings),
            batch_size=per_call,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=actors),
            num_cpus=config.cpus_per_actor,
            max_restarts=-1,  # a dead actor (worker process or node) is recreated ...
            max_task_retries=-1,  # ... and its unfinished batches run again: no row is lost
        )
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for text, worker in zip(batch[ROW], batch[WORKER], strict=True):
                yield decode_row(str(text)), str(worker)
    except EdgeCNNError:
        raise
    except Exception as err:  # Ray wraps what an actor raised; give the user the edgecnn error inside
        raise _unwrap(err) from err


def _unwrap(err: BaseException) -> EdgeCNNError:
    """The edgecnn error an actor raised (ModelError for a failing model), else a ClusterError.

    Ray Data passes a UDF's exception back as text (its type does not survive the trip): the last
    ``SomeError: message`` line of the remote traceback that names an edgecnn error is the one.
    """
    import re

    from edgecnn import errors

    for cause in _chain(err):
        if isinstance(cause, EdgeCNNError):
            return type(cause)(str(cause), path=cause.path)
    found: EdgeCNNError | None = None
    for line in str(err).splitlines():
        match = re.match(r"^(?:edgecnn\.errors\.)?([A-Z]\w*Error): (.+)$", line.strip())
        cls = getattr(errors, match.group(1), None) if match else None
        if match and isinstance(cls, type) and issubclass(cls, EdgeCNNError):
            found = cls(match.group(2).strip())
    if found is not None:
        return found
    first = next((t for t in str(err).strip().splitlines() if t.strip()), type(err).__name__)
    return ClusterError(f"the Ray job failed: {first}")


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and all(cause is not s for s in seen):
        seen.append(cause)
        inner = getattr(cause, "cause", None)
        cause = inner if isinstance(inner, BaseException) else (cause.__cause__ or cause.__context__)
    return seen


def _cluster_summary(info: ClusterInfo, config: RayConfig, actors: int, used: set[str]) -> dict[str, Any]:
    return {
        "address": info.address,
        "started_here": info.started_here,
        "nodes": info.nodes,
        "cpus": info.cpus,
        "actors": actors,
        "cpus_per_actor": config.cpus_per_actor,
        "nodes_used": len({w.split(":", 1)[0] for w in used}),
        "actor_processes_used": len(used),
    }
