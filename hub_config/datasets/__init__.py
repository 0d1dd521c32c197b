"""Datasets: what data stewards register and grant, and how members get them.

Public surface, for the spawners, the CLI and the catalogue:

- :class:`DatasetStore` / :func:`dataset_store` (``store``): the registry, grants,
  access requests and audit log; :class:`DatasetError`, :class:`MountSpec` (``models``).
- ``scan``: the de-identification gate; ``files``: confined, bounded reads of dataset
  files; ``admin``: scans and manifests; ``demo``: the demo's synthetic data.
- ``mounts``: granted datasets into servers (read-only pod volumes; local groups,
  permissions and links, planned by a pure function, then applied).
- ``service``: the members' catalogue, a hub-managed service.

The tables are owned by the migrations in ``migrations/``.
"""

from .models import DatasetError, MountSpec
from .store import DatasetStore, dataset_store

__all__ = ["DatasetError", "DatasetStore", "MountSpec", "dataset_store"]
