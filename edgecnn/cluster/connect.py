"""Connect the driver to a Ray cluster, or start a local one for the run, with safe defaults.

``auto`` joins the cluster named by ``RAY_ADDRESS`` or starts a local cluster that lives for the run:
loopback only, no dashboard, no usage statistics, Ray's token authentication on (Ray's default for new
local clusters since 2.59; never turned off here). ``HOST:PORT`` joins an existing cluster; Ray only sends
a token to an explicit address when ``RAY_AUTH_MODE=token`` is set, so a cluster that requires one needs
``RAY_AUTH_MODE=token`` plus ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH`` (or ``~/.ray/auth_token``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from edgecnn.errors import ClusterError, UsageError

log = logging.getLogger(__name__)

LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray treats localhost as localhost, not as a LAN IP


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """Which cluster a run used: for the summary."""

    address: str
    started_here: bool  # a local cluster started for this run (and stopped after it)
    nodes: int  # alive nodes when the run started
    cpus: float  # CPUs the cluster offers


def check_address(address: str) -> str:
    """``auto`` or ``HOST:PORT`` (``ray://`` client addresses are not supported: Ray Data needs a driver).

    Raises:
        UsageError: anything else.
    """
    address = address.strip()
    if address == "auto":
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        raise UsageError(f"--ray: expected 'auto' or HOST:PORT of a Ray cluster's head (GCS), got {address!r}")
    return address


RAY_NATIVE_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,.]+ [DIWE] \d+ \d+\] ")  # Ray's C++ log lines
CONNECT_TIMEOUT_S = 5.0  # a TCP probe of HOST:PORT before Ray's own (minutes-long) connection retries


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at an explicit ``HOST:PORT`` (``auto`` without RAY_ADDRESS passes).

    Ray's driver retries a dead GCS address for a minute or more and does not answer SIGTERM meanwhile;
    a plain TCP connect with a timeout answers in seconds and is interruptible.

    Raises:
        UsageError: a malformed address.
        ClusterError: nothing accepts a connection at the address within ``timeout`` seconds.
    """
    import socket

    address = check_address(address)
    target = os.environ.get("RAY_ADDRESS") if address == "auto" else address
    if not target or target == "auto" or "://" in target:
        return
    host, _, port = target.rpartition(":")
    if not port.isdigit():
        return  # Ray's own parsing of RAY_ADDRESS decides
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        reason = "no answer" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__)
        raise ClusterError(
            f"cannot connect to Ray at {target}: {reason} within {timeout:g} s; is a Ray head (GCS) running "
            f"there? (start one with `ray start --head --port {port}`)"
        ) from None


@contextmanager
def ray_session(address: str, connect_timeout_s: float = 30.0) -> Iterator[ClusterInfo]:
    """Be connected to a cluster for the block; disconnect (and stop a cluster started here) after it.

    Raises:
        UsageError: a malformed address.
        ClusterError: Ray cannot connect or start (the message carries Ray's reason).
    """
    from edgecnn._optional import require

    address = check_address(address)
    check_reachable(address)
    target = prepare_environment(address)
    quiet = os.environ.get("EDGECNN_DEBUG", "") in ("", "0")  # Ray's INFO/WARNING chatter; --debug keeps it
    ray = require("ray", extra="ray")
    if ray.is_initialized():  # the caller's own Ray session: use it, leave it running
        yield _describe(ray, "existing ray.init() session", started_here=False)
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR if quiet else logging.INFO}
    if target:
        kwargs["address"] = target
    else:  # token auth: Ray's default for the cluster ray.init starts (RAY_AUTH_MODE must be set before ray is
        # imported to take effect in this process, so it is left to Ray rather than set here)
        kwargs.update(address="local", include_dashboard=False, _node_ip_address="127.0.0.1")
        # the cluster serves this run only: its workers (the inference) run at the driver's priority, not
        # Ray's default nice 15, at which anything else busy on the machine (the driver's own decoding
        # included) starves them: measured 117 s vs 15 s for a 1-image job beside 3 busy processes
        kwargs["_system_config"] = {"worker_niceness": 0}
    try:
        if target:
            _init_within(ray, kwargs, target, connect_timeout_s)
        else:
            ray.init(**kwargs)
    except ClusterError:
        raise
    except Exception as err:  # Ray raises ConnectionError, AuthenticationError, RuntimeError, ...
        where = target or "a new local cluster"
        hint = (
            "; check the address, and for a cluster with token authentication set RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to its token"
            if target
            else ""
        )
        raise ClusterError(f"cannot connect to Ray at {where}: {_first_line(err)}{hint}") from err
    try:
        yield _describe(ray, target or "local (started for this run)", started_here=not target)
    finally:
        ray.shutdown()


def prepare_environment(address: str) -> str | None:
    """Set Ray's environment switches (read when ray is imported: call this first); return the target address
    (None: start a local cluster)."""
    target = os.environ.get("RAY_ADDRESS") if address == "auto" else address
    if not target or is_loopback(target):
        # Ray rewrites a loopback address to this machine's outward IP before connecting, which a cluster
        # bound to 127.0.0.1 never answers; this switch (read when ray is imported) keeps it loopback. Not
        # for a remote cluster: there the driver must advertise an address the other nodes can reach.
        os.environ.setdefault(LOOPBACK_SWITCH, "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if os.environ.get("EDGECNN_DEBUG", "") in ("", "0"):  # Ray's INFO/WARNING chatter; --debug keeps it
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")  # read when Ray Data configures its loggers
        # the C++ core's warnings ("Failed to connect to GCS ..." every 5 s while it retries): its logger writes
        # to a copy of fd 2 taken when ray is imported, so only its level, set before that import, reaches it
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    return target or None


def _init_within(ray: Any, kwargs: dict[str, Any], target: str, timeout: float) -> None:
    """``ray.init`` to an existing cluster, bounded: something that accepts TCP but is no GCS makes Ray retry
    for minutes inside C++, where the main thread runs no signal handler. In a helper thread, the main
    thread keeps the default SIGTERM (the process ends at once) and Ctrl-C, and gives up after ``timeout``.

    Raises:
        ClusterError: no connection within ``timeout`` seconds.
    """
    import contextlib
    import threading

    from edgecnn._optional import filtered_native_stderr

    box: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as err:  # handed to the main thread
            box["error"] = err

    ray_worker_log = logging.getLogger("ray._private.worker")
    level = ray_worker_log.level
    if kwargs.get("logging_level", logging.INFO) >= logging.ERROR:
        ray_worker_log.setLevel(logging.ERROR)  # "SIGTERM handler is not set ..." is the point here
    quiet = kwargs.get("logging_level", logging.INFO) >= logging.ERROR
    native = filtered_native_stderr(RAY_NATIVE_LOG) if quiet else contextlib.nullcontext()
    try:
        with native:  # the C++ core's retry lines ("Failed to connect to GCS ...") while it tries
            thread = threading.Thread(target=connect, name="edgecnn-ray-connect", daemon=True)
            thread.start()
            thread.join(timeout)
    finally:
        ray_worker_log.setLevel(level)
    if thread.is_alive():
        # the helper thread is stuck in Ray's C++ retries: Ray's exit hook would wait on it (and its log lines
        # would reach the terminal meanwhile); there is nothing to shut down, so the process may just end
        import atexit

        with contextlib.suppress(Exception):
            atexit.unregister(ray._private.worker.shutdown)
        if quiet:
            _ORPHANED.append(thread)
            silence_orphaned_connect()
        raise ClusterError(
            f"cannot connect to Ray at {target}: no answer from a Ray head (GCS) there within {timeout:g} s; "
            "check the address (HOST:PORT of `ray start --head`)"
        )
    if "error" in box:
        raise box["error"]


_ORPHANED: list[Any] = []  # connect threads given up on (stuck in Ray's C++ retries)


def connect_given_up() -> bool:
    """Whether a connect thread given up on is still alive (stuck in Ray's C++ retries, logging them)."""
    return any(t.is_alive() for t in _ORPHANED)


def silence_orphaned_connect() -> None:
    """A connect thread given up on keeps logging its retries to fd 2 until the process ends: from now on
    (and until exit, where it is drained) fd 2 passes through a filter that drops Ray's log lines. Call it
    again after an enclosing filter restored fd 2."""
    import atexit

    from edgecnn._optional import live_filtered_native_stderr

    if not connect_given_up():
        return
    lasting = live_filtered_native_stderr(RAY_NATIVE_LOG, restore=False)
    lasting.__enter__()
    atexit.register(lasting.__exit__, None, None, None)


def is_loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` names this machine's loopback interface."""
    host = address.rpartition(":")[0].strip("[]")
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _describe(ray: Any, address: str, *, started_here: bool) -> ClusterInfo:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    return ClusterInfo(address=address, started_here=started_here, nodes=len(nodes), cpus=cpus)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
