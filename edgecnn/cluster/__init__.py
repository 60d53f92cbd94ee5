"""Folder classification on a Ray cluster (the ``[ray]`` extra): the runtime's Classifier in Ray Data
actors, the runtime's resumable writer on the driver. Importing this package does not import ray; nothing
below it imports ray at all. Users reach it through ``edgecnn.classify`` with ``ClassifyOptions(ray=...)``.
"""

from __future__ import annotations

from edgecnn.cluster.connect import ClusterError, ClusterInfo
from edgecnn.cluster.ray_classify import RayConfig, classify_on_ray

__all__ = ["ClusterError", "ClusterInfo", "RayConfig", "classify_on_ray"]
