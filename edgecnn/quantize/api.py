"""``quantize``: the public entry. One quantization (``once.quantize_once``), then the policy that the user
sees: an INT8 model that misses the accuracy bars on ``--eval`` is replaced by the first rung of the
fallback ladder that holds them (``search.hold_bars``), and the speed is measured on the model kept."""

from __future__ import annotations

import time
from pathlib import Path

from edgecnn.quantize.config import QuantizeConfig, QuantMode
from edgecnn.quantize.once import QuantizeReport, finish, quantize_once
from edgecnn.quantize.search import hold_bars


def quantize(
    src: str | Path,
    dst: str | Path | None = None,
    config: QuantizeConfig | None = None,
    *,
    calibration: str | Path | None = None,
    eval_data: str | None = None,
    measure_speed: bool = True,
    fallback: bool = True,
    record_folder: str | Path | None = None,
) -> QuantizeReport:
    """Quantize ``src`` (an edgecnn ONNX model) into ``dst`` (default ``NAME.int8|dynamic|fp16.onnx``).

    Static INT8 needs ``calibration``: an image folder or a data source (its train split); without it,
    the model's own training source is used when it loads offline (``edgecnn.source.data``).
    With ``eval_data`` and ``fallback``, an INT8 model that misses the accuracy bars there is replaced by
    the first configuration of ``search.bar_ladder`` that holds them, and the report says so.

    ``record_folder``: where the output will finally live, when that is not ``dst``'s folder (the budget
    search writes candidates in a temporary folder): the source model and calibration folder are recorded
    relative to it.

    Raises:
        ModelError, InputError (calibration), UsageError, QuantizeError.
    """
    t0 = time.perf_counter()
    config = config or QuantizeConfig.int8()
    report = quantize_once(
        src, dst, config, calibration=calibration, eval_data=eval_data, measure_speed=False, record_folder=record_folder
    )
    failed = report.accuracy is not None and report.accuracy["verdict"] == "FAIL"
    if fallback and eval_data and failed and config.mode == QuantMode.int8:
        report = hold_bars(
            report.source, report.path, config, calibration=calibration, eval_data=eval_data, first=report
        )
    return finish(report, measure_speed=measure_speed, started=t0)
