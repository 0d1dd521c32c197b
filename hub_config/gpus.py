"""GPUs of this machine and who holds them (local mode).

Discovery asks NVML (nvidia-ml-py) first, then the studio config's inventory.
The allocator hands each server its own devices; it lives in the hub process,
whose event loop runs one spawn's allocation at a time, so two spawns never
get the same device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("aistudio.gpus")


@dataclass(frozen=True)
class GPU:
    index: int
    type: str
    uuid: str | None = None

    @property
    def visible_id(self) -> str:
        """How CUDA_VISIBLE_DEVICES names this device (UUIDs survive reordering)."""
        return self.uuid or str(self.index)


class NoFreeGPUs(Exception):
    pass


def gpu_type_from_name(name: str) -> str:
    """``NVIDIA A100-SXM4-80GB`` -> ``a100-sxm4-80gb``; ``NVIDIA H200`` -> ``h200``."""
    name = name.strip().lower()
    for prefix in ("nvidia ", "tesla "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return "-".join(name.replace("_", " ").split())


def type_matches(device_type: str, wanted: str | None) -> bool:
    """A profile's ``a100`` matches ``a100`` and ``a100-sxm4-80gb``; no type matches any."""
    return not wanted or device_type == wanted or device_type.startswith(wanted + "-")


def discover_nvml() -> list[GPU]:
    """GPUs NVML reports; an empty list where there is no driver or no GPU."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        log.debug("NVML unavailable: %s", e)
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            name = name.decode() if isinstance(name, bytes) else name
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            gpus.append(GPU(index=i, type=gpu_type_from_name(name), uuid=uuid))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def discover(discovery: str, inventory: list[dict]) -> tuple[list[GPU], str]:
    """The machine's GPUs and where the list came from (nvml, inventory or none)."""
    if discovery in ("auto", "nvml"):
        found = discover_nvml()
        if found or discovery == "nvml":
            return found, "nvml"
    if discovery in ("auto", "inventory") and inventory:
        return [GPU(index=g["index"], type=g["type"], uuid=g.get("uuid")) for g in inventory], "inventory"
    return [], "none"


def cuda_env(gpus: list[GPU]) -> dict[str, str]:
    """Environment that makes CUDA show a process exactly ``gpus`` (none: no GPU at all)."""
    return {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": ",".join(g.visible_id for g in gpus),
    }


class GPUAllocator:
    """Exclusive assignment of devices to servers (owners are ``user/server`` keys)."""

    def __init__(self, gpus: list[GPU], source: str = "inventory"):
        self.gpus = list(gpus)
        self.source = source
        self._holder: dict[int, str] = {}

    def free(self, gpu_type: str | None = None) -> list[GPU]:
        return [g for g in self.gpus if g.index not in self._holder and type_matches(g.type, gpu_type)]

    def held_by(self, owner: str) -> list[GPU]:
        return [g for g in self.gpus if self._holder.get(g.index) == owner]

    def summary(self) -> dict[str, tuple[int, int]]:
        """Free and total devices per GPU type."""
        out: dict[str, tuple[int, int]] = {}
        for g in self.gpus:
            free, total = out.get(g.type, (0, 0))
            out[g.type] = (free + (g.index not in self._holder), total + 1)
        return out

    def allocate(self, owner: str, count: int, gpu_type: str | None = None) -> list[GPU]:
        """Give ``owner`` ``count`` free devices of ``gpu_type``, or raise :class:`NoFreeGPUs`."""
        self.release(owner)
        if count <= 0:
            return []
        kind = gpu_type.upper() if gpu_type else "GPU"
        matching = [g for g in self.gpus if type_matches(g.type, gpu_type)]
        if not matching:
            raise NoFreeGPUs(
                f"This machine has no {kind} (GPUs found: "
                f"{', '.join(sorted({g.type for g in self.gpus})) or 'none'}). Choose another profile."
            )
        free = self.free(gpu_type)
        if len(free) < count:
            raise NoFreeGPUs(
                f"Not enough free {kind}s: you asked for {count}, {len(free)} of {len(matching)} are free. "
                "Try again when a server stops, or join the GPU queue from the start page."
            )
        chosen = free[:count]
        for g in chosen:
            self._holder[g.index] = owner
        return chosen

    def claim(self, owner: str, indices: list[int]) -> list[GPU]:
        """Re-take devices recorded for a server that kept running across a hub restart."""
        taken = []
        for g in self.gpus:
            if g.index in indices and self._holder.get(g.index, owner) == owner:
                self._holder[g.index] = owner
                taken.append(g)
        return taken

    def release(self, owner: str) -> None:
        for index in [i for i, o in self._holder.items() if o == owner]:
            del self._holder[index]
