"""GPU utilisation of running servers, sampled by the hub (for GPU-idle culling).

A :class:`Sampler` answers one question for a list of :class:`Target` servers: how busy
are each server's GPUs right now, as a mean utilisation in percent (0-100), or ``None``
when that cannot be known. Samplers never raise: what fails is logged and reads ``None``,
so a broken driver or exporter never makes a server look idle (``None`` is not idle
evidence, see :func:`idle_since`).

- :class:`NVMLSampler`, local mode: asks NVML (nvidia-ml-py) about the devices a server
  holds, named as its ``CUDA_VISIBLE_DEVICES`` names them (UUIDs, or indices, which the
  studio sets with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` and so match NVML's order).
- :class:`DCGMSampler`, Kubernetes: reads ``DCGM_FI_DEV_GPU_UTIL`` from NVIDIA's
  dcgm-exporter, whose Kubernetes mapping labels each GPU's series with the pod that
  holds it (``pod``/``namespace``/``container``; ``pod_name``/``pod_namespace`` with the
  exporter's ``--use-old-namespace``).
- :class:`FileSampler`, tests and demos: a JSON file ``{key: utilisation}``.

:func:`parse_dcgm` and :func:`idle_since` are pure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger("aistudio.lifecycle.samplers")

#: dcgm-exporter's metric for a GPU's utilisation in percent (DCGM field 203, from NVML)
DCGM_UTIL_METRIC = "DCGM_FI_DEV_GPU_UTIL"
#: the labels dcgm-exporter puts on a GPU's series when a pod holds it: (namespace, pod),
#: current names first, then those of ``--use-old-namespace`` (older exporters' default)
DCGM_POD_LABELS = (("namespace", "pod"), ("pod_namespace", "pod_name"))


@dataclass(frozen=True)
class Target:
    """A running server whose GPUs are sampled."""

    key: str  # "user/server" (server "" for the default one)
    devices: tuple[str, ...] = ()  # local mode: the GPUs it holds, as CUDA_VISIBLE_DEVICES names them (UUID or index)
    pod: str | None = None  # Kubernetes: its pod name
    namespace: str | None = None


@runtime_checkable
class Sampler(Protocol):
    name: str

    async def sample(self, targets: list[Target]) -> dict[str, float | None]:
        """key -> mean utilisation (0-100) of the target's GPUs now; None when unknown.
        Never raises (log and return None for what failed)."""
        ...

    def close(self) -> None:
        """Release what the sampler holds (NVML); sampling again afterwards starts afresh."""
        ...


class _Warnings:
    """Log a failure as a warning the first time, at debug level while it repeats (samplers
    run every minute or so); once the thing works again, the next failure warns again."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}

    def failed(self, what: str, message: str, *args) -> None:
        text = message % args if args else message
        level = logging.DEBUG if self._failing.get(what) == text else logging.WARNING
        self._failing[what] = text
        log.log(level, "%s", text)

    def ok(self, what: str) -> None:
        if self._failing.pop(what, None) is not None:
            log.info("GPU sampling: %s works again", what)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# --- local mode: NVML -------------------------------------------------------------------


class NVMLSampler:
    """Utilisation of each server's own devices through NVML (local mode).

    A target's value is the mean of ``nvmlDeviceGetUtilizationRates(handle).gpu`` (percent
    of the last sample period, 1/6 s to 1 s, in which a kernel ran) over its devices, each
    found by UUID (``nvmlDeviceGetHandleByUUID``) or, for a plain number, by index. A target
    with no devices, or any device NVML cannot read (a vanished device, a MIG instance,
    which has no utilisation of its own), is ``None``: a mean over the rest could show a
    busy server as idle. NVML is initialised once, at the first sample, and shut down by
    :meth:`close`; with no driver or no GPU every value is ``None`` and that is logged once.
    The blocking NVML calls run in a worker thread.
    """

    name = "nvml"

    def __init__(self) -> None:
        self._lock = threading.Lock()  # NVML init/shutdown and reads: one thread at a time
        self._nvml = None  # the pynvml module once initialised
        self._unavailable = False  # NVML failed to initialise: logged once, not retried until close()
        self._warnings = _Warnings()

    def _init(self):
        """pynvml, initialised; None where there is no NVML (logged once). Holds the lock."""
        if self._nvml is not None or self._unavailable:
            return self._nvml
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as e:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self._unavailable = True
            log.warning("GPU sampling: NVML is unavailable (%s); every server's GPU utilisation is unknown", e)
            return None
        self._nvml = pynvml
        return pynvml

    def _handle(self, nvml, device: str):
        device = device.strip()
        if device.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(device))
        return nvml.nvmlDeviceGetHandleByUUID(device)

    def _read(self, targets: list[Target]) -> dict[str, float | None]:
        out: dict[str, float | None] = {t.key: None for t in targets}
        with self._lock:
            nvml = self._init()
            if nvml is None:
                return out
            for target in targets:
                if not target.devices:
                    continue
                values = []
                for device in target.devices:
                    try:
                        values.append(float(nvml.nvmlDeviceGetUtilizationRates(self._handle(nvml, device)).gpu))
                    except Exception as e:  # NVMLError_NotFound, _NotSupported, _GpuIsLost, ...
                        self._warnings.failed(f"{target.key} {device}", "GPU sampling: NVML cannot read device %s of %s: %s",
                                              device, target.key, e)
                        values = None
                        break
                    self._warnings.ok(f"{target.key} {device}")
                out[target.key] = _mean(values) if values else None
        return out

    async def sample(self, targets: list[Target]) -> dict[str, float | None]:
        try:
            return await asyncio.to_thread(self._read, list(targets))
        except Exception:  # never raises: unknown for all
            log.exception("GPU sampling through NVML failed")
            return {t.key: None for t in targets}

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                try:
                    self._nvml.nvmlShutdown()
                except Exception as e:
                    log.debug("nvmlShutdown: %s", e)
            self._nvml, self._unavailable = None, False


# --- Kubernetes: dcgm-exporter ----------------------------------------------------------


def parse_dcgm(text: str) -> dict[tuple[str, str], list[float]]:
    """(namespace, pod) -> the ``DCGM_FI_DEV_GPU_UTIL`` values of the GPUs that pod holds,
    in the order of ``text`` (one dcgm-exporter scrape, Prometheus text format).

    A series belongs to the pod named by its ``namespace``/``pod`` labels, or by
    ``pod_namespace``/``pod_name`` (the exporter's ``--use-old-namespace``); series without
    a pod (a GPU no pod holds: no such labels, or empty ones) and NaN values are left out.
    A pod with several containers, or several GPUs, gets one value per series. Raises
    ValueError where ``text`` is not Prometheus' text format.
    """
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str], list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != DCGM_UTIL_METRIC or math.isnan(sample.value):
                continue
            for namespace_label, pod_label in DCGM_POD_LABELS:
                pod = sample.labels.get(pod_label)
                if pod:
                    out.setdefault((sample.labels.get(namespace_label, ""), pod), []).append(float(sample.value))
                    break
    return out


class DCGMSampler:
    """Utilisation of each server's pod from NVIDIA's dcgm-exporter (Kubernetes).

    ``urls``: the exporters' metrics URLs (``http://<node>:9400/metrics``), one per GPU
    node, or a single URL. A Service in front of the DaemonSet answers each request from
    one node's exporter only, so give one URL per node (or per endpoint of a headless
    Service). All are fetched at each sample, concurrently, with tornado's
    ``AsyncHTTPClient`` and ``timeout`` seconds for connecting and for the whole request.

    A target's value is the mean ``DCGM_FI_DEV_GPU_UTIL`` over the GPUs the exporters
    report for its pod (:func:`parse_dcgm`): by ``namespace`` and ``pod``, or by pod name
    alone where the target has no namespace and exactly one namespace has such a pod. A pod
    no exporter reports (not yet mapped, its node's exporter down or failing) is ``None``.
    """

    name = "dcgm"

    def __init__(self, urls: str | Iterable[str], timeout: float = 5.0):
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("DCGMSampler needs at least one dcgm-exporter URL")
        self.timeout = timeout
        self._warnings = _Warnings()

    async def _scrape(self, url: str) -> dict[tuple[str, str], list[float]] | None:
        """One exporter's pods; None (logged) when it cannot be reached or read."""
        from tornado.httpclient import AsyncHTTPClient

        try:
            response = await AsyncHTTPClient().fetch(
                url, connect_timeout=self.timeout, request_timeout=self.timeout, follow_redirects=False,
                headers={"Accept": "text/plain"},
            )
            pods = parse_dcgm(response.body.decode("utf-8", errors="replace"))
        except Exception as e:  # refused, timed out, HTTP error, not the text format
            self._warnings.failed(url, "GPU sampling: dcgm-exporter %s did not answer usably: %s", url, e)
            return None
        self._warnings.ok(url)
        return pods

    async def sample(self, targets: list[Target]) -> dict[str, float | None]:
        out: dict[str, float | None] = {t.key: None for t in targets}
        try:
            scraped = await asyncio.gather(*(self._scrape(url) for url in self.urls))
            pods: dict[tuple[str, str], list[float]] = {}
            for one in scraped:
                for pod, values in (one or {}).items():
                    pods.setdefault(pod, []).extend(values)
            by_name: dict[str, list[tuple[str, str]]] = {}
            for namespace, pod in pods:
                by_name.setdefault(pod, []).append((namespace, pod))
            for target in targets:
                if not target.pod:
                    continue
                if target.namespace is not None:
                    out[target.key] = _mean(pods.get((target.namespace, target.pod), []))
                elif len(by_name.get(target.pod, [])) == 1:
                    out[target.key] = _mean(pods[by_name[target.pod][0]])
        except Exception:  # never raises
            log.exception("GPU sampling through dcgm-exporter failed")
        return out

    def close(self) -> None:
        """Nothing to release: tornado's AsyncHTTPClient is shared by the hub, not ours to close."""


# --- tests and demos: a JSON file -------------------------------------------------------


class FileSampler:
    """Utilisation from a JSON file ``{"user/server": 42.0, ...}``, read at each sample.

    A key that is missing, ``null``, not a number or outside 0-100 reads ``None``; so does
    every key while the file is missing or not a JSON object (logged).
    """

    name = "file"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._warnings = _Warnings()

    def _load(self) -> dict:
        data = json.loads(self.path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data

    async def sample(self, targets: list[Target]) -> dict[str, float | None]:
        out: dict[str, float | None] = {t.key: None for t in targets}
        try:
            data = await asyncio.to_thread(self._load)
        except Exception as e:
            self._warnings.failed(str(self.path), "GPU sampling: cannot read %s: %s", self.path, e)
            return out
        self._warnings.ok(str(self.path))
        for target in targets:
            value = data.get(target.key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100:
                out[target.key] = float(value)
            elif value is not None:
                log.warning("GPU sampling: %s gives %s the utilisation %r, not a number 0-100", self.path, target.key, value)
        return out

    def close(self) -> None:
        pass


# --- the idle decision ------------------------------------------------------------------


def idle_since(samples: list[tuple[float, float | None]], threshold: float, now: float) -> float | None:
    """The time since which a server's GPUs have been idle, or None if they are not idle.

    ``samples`` are ``(time, utilisation)`` pairs, oldest first (they are put in time order
    anyway); samples later than ``now`` are ignored. A sample is *idle* when its utilisation
    is below ``threshold`` (strictly), *busy* at or above it, *unknown* when it is None.

    - No known sample, or a busy latest known sample: None.
    - Otherwise the time of the earliest known sample of the unbroken run of idle samples
      that ends with the latest known one: the run starts just after the last busy sample,
      or at the first known sample if none was busy. Unknown samples inside or around the
      run neither break it nor start it: a sampling gap is not evidence either way.

    The server has been idle for ``now - idle_since(...)`` seconds. The start is the first
    sample that *saw* the GPUs idle, not the busy sample before it, so the idle time is never
    overstated.
    """
    known = [(t, u) for t, u in sorted(samples, key=lambda s: s[0]) if t <= now and u is not None]
    if not known or known[-1][1] >= threshold:
        return None
    start = known[-1][0]
    for t, utilisation in reversed(known):
        if utilisation >= threshold:
            break
        start = t
    return start
