"""``classify``: every file of a folder into a resumable results file, on this machine or on a Ray cluster.

The one entry that owns that choice: ``ClassifyOptions.ray`` set means the Ray wing (``edgecnn.cluster``,
which imports ray only when it runs), unset means the runtime's local pipeline (``runtime.folder``). Both
write the same rows through the same ``ResultWriter``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecnn.cluster import RayConfig
from edgecnn.errors import UsageError
from edgecnn.runtime.folder import check_options
from edgecnn.runtime.providers import Provider
from edgecnn.runtime.rows import ClassifyRow, ClassifySummary


@dataclass(frozen=True, slots=True)
class ClassifyOptions:
    """How to classify a folder.

    Args:
        top_k: labels kept per image. batch_size: images per inference batch. workers: decode threads
            (None: up to 8). recursive: descend into subfolders. resume: continue ``OUT.partial`` (or ``OUT``).
        provider, threads, mode: the local engine (``Classifier``'s arguments).
        ray: run on this Ray cluster instead; its actors run CPU sessions sized by ``ray.cpus_per_actor``.

    Raises:
        UsageError: a count below 1, or engine settings given together with ``ray``.
    """

    top_k: int = 5
    batch_size: int = 32
    workers: int | None = None
    recursive: bool = True
    resume: bool = False
    provider: Provider | str = Provider.auto
    threads: int | None = None
    mode: str = "latency"
    ray: RayConfig | None = None

    def __post_init__(self) -> None:
        check_options(top_k=self.top_k, batch_size=self.batch_size, workers=self.workers)
        local_engine = self.threads is not None or self.mode != "latency"
        if self.ray is not None and (local_engine or self.provider not in (Provider.auto, Provider.cpu)):
            raise UsageError(
                "--ray runs CPU sessions sized by --ray-cpus-per-actor: drop --threads, --mode, --provider"
            )


def classify(
    model: str | Path,
    folder: str | Path,
    out: str | Path,
    options: ClassifyOptions | None = None,
    *,
    on_row: Callable[[ClassifyRow], None] | None = None,
) -> ClassifySummary:
    """Classify every non-hidden file under ``folder`` with ``model`` into ``out`` (.csv or .jsonl): one row
    per file, errors as rows, resumable. ``on_row`` sees each row as it is written (a progress bar).

    Raises:
        UsageError, InputError, ModelError; ClusterError and MissingDependencyError with ``options.ray``.
    """
    opts = options or ClassifyOptions()
    rows = {"top_k": opts.top_k, "batch_size": opts.batch_size, "workers": opts.workers}
    if opts.ray is not None:
        from edgecnn.cluster import classify_on_ray

        return classify_on_ray(
            model, folder, out, opts.ray, resume=opts.resume, recursive=opts.recursive, on_row=on_row, **rows
        )
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.folder import classify_to_file

    with Classifier(model, provider=opts.provider, threads=opts.threads, mode=opts.mode) as clf:
        return classify_to_file(clf, folder, out, resume=opts.resume, recursive=opts.recursive, on_row=on_row, **rows)
