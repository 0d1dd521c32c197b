"""Prints, as JSON, the GPUs the CUDA driver shows this process: their count and UUIDs.

Uses the driver API through ctypes, so it needs no CUDA toolkit or framework.
"""

import ctypes
import json


def visible_gpus() -> list[str]:
    cuda = ctypes.CDLL("libcuda.so.1")
    if cuda.cuInit(0) != 0:  # CUDA_ERROR_NO_DEVICE and friends: nothing visible
        return []
    count = ctypes.c_int()
    assert cuda.cuDeviceGetCount(ctypes.byref(count)) == 0
    uuids = []
    for i in range(count.value):
        device = ctypes.c_int()
        assert cuda.cuDeviceGet(ctypes.byref(device), i) == 0
        raw = (ctypes.c_ubyte * 16)()
        assert cuda.cuDeviceGetUuid(raw, device) == 0
        h = bytes(raw).hex()
        uuids.append(f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return uuids


if __name__ == "__main__":
    print(json.dumps(visible_gpus()))
