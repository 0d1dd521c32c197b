"""tests/gpu runs only where NVML finds an NVIDIA GPU; elsewhere every test is skipped, saying why."""

import pytest

from hub_config.gpus import discover_nvml

GPUS = discover_nvml()


def pytest_collection_modifyitems(config, items):
    if GPUS:
        return
    skip = pytest.mark.skip(reason="no NVIDIA GPU found through NVML (nvidia-ml-py) on this machine")
    for item in items:
        if "tests/gpu/" in str(item.fspath):
            item.add_marker(skip)
