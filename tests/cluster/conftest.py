"""One local multi-node Ray cluster per test session, run the way a user's cluster should be.

Head with 0 CPUs (it only schedules) and two worker nodes with 1 CPU each, small object stores, all on
127.0.0.1; Ray's token authentication on with a fresh random token (passed to every process through the
environment, never written to ~/.ray), no dashboard, no usage statistics.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

OBJECT_STORE = 80 * 1024**2
NODE_ARGS = {"num_cpus": 1, "object_store_memory": OBJECT_STORE, "node_ip_address": "127.0.0.1"}
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RayCluster:
    """The running cluster, its address, and the environment a driver process needs to join it."""

    cluster: Any
    address: str
    env: dict[str, str] = field(default_factory=dict)

    def worker(self) -> Any:
        return next(iter(self.cluster.worker_nodes))

    def replace_worker(self) -> None:
        """Kill one worker node's processes without warning, then start a fresh node in its place."""
        self.cluster.remove_node(self.worker(), allow_graceful=False)
        self.cluster.add_node(**NODE_ARGS)

    def driver_env(self, **extra: str) -> dict[str, str]:
        """Environment for a driver subprocess: the token, and this checkout first on the path."""
        env = {**os.environ, **self.env, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        env.update(extra)
        return env

    def cli(self, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "edgecnn", "classify", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.driver_env(**env))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    from edgecnn.cluster.connect import LOOPBACK_SWITCH

    env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_worker_niceness": "0",  # Ray's default 15: beside the suite's other workers, its jobs wait minutes
        LOOPBACK_SWITCH: "0",  # read when ray is imported: loopback addresses stay loopback
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the nodes (and this process, the driver) inherit them
    from ray._raylet import Config
    from ray.cluster_utils import Cluster

    Config.initialize("")  # this process reads RAY_AUTH_MODE again, as Ray's own _enable_token_auth does
    head = {**NODE_ARGS, "num_cpus": 0, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        for _ in range(2):
            cluster.add_node(**NODE_ARGS)
        cluster.wait_for_nodes()
        yield RayCluster(cluster, cluster.address, env)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        Config.initialize("")
