"""Kubernetes mode: each server a pod sized by the chosen quota profile (KubeSpawner)."""

from __future__ import annotations

import copy

from kubespawner import KubeSpawner
from tornado import web
from traitlets import Dict, Float, Unicode

from .. import units
from ..datasets import mounts as dataset_mounts
from ..profiles import Launch
from .capacity import fetch_capacity
from .datasets import DatasetsSpawnerMixin
from .mixin import MAX_RUNTIME_ENV, PROFILE_ENV, ProfileSpawnerMixin

# KubeSpawner settings a launch decides; every start begins again from the
# configured values, so nothing of one launch leaks into the next.
LAUNCH_TRAITS = (
    "image",
    "cpu_limit",
    "cpu_guarantee",
    "mem_limit",
    "mem_guarantee",
    "extra_resource_limits",
    "extra_resource_guarantees",
    "node_selector",
    "tolerations",
    "node_affinity_required",
    "node_affinity_preferred",
    "volumes",
    "volume_mounts",
    "extra_labels",
    "environment",
)


def pod_settings(
    launch: Launch, *, base: dict, gpu_resource: str, gpu_types: dict, request_fraction: float, datasets=(),
    images: dict | None = None,
) -> dict:
    """KubeSpawner trait values for ``launch``, on top of the configured ``base`` values.

    A pure function: the GPU limit under ``gpu_resource`` (or the GPU type's own
    resource name, e.g. a MIG profile), the type's node selector, tolerations and
    affinity, ``/dev/shm`` as a memory-backed emptyDir, labels naming profile and GPUs,
    and one read-only volume per granted dataset (``datasets``: MountSpecs decided on the hub).
    The image is the chosen environment's (``images``: environment name -> image), as KubeSpawner's
    image choice sets it; a profile that names no environments keeps its own ``image``.
    """
    res, profile = launch.resources, launch.profile
    settings = copy.deepcopy(base)
    environment_image = (images or {}).get(launch.environment) if launch.environment else None
    if environment_image:
        settings["image"] = environment_image
    elif profile.image:
        settings["image"] = profile.image
    settings["cpu_limit"] = res.cpu
    settings["cpu_guarantee"] = round(res.cpu * request_fraction, 3)
    settings["mem_limit"] = res.memory
    settings["mem_guarantee"] = int(res.memory * request_fraction)
    labels = settings["extra_labels"]
    labels["aistudio.io/profile"] = profile.slug
    labels["aistudio.io/gpus"] = str(res.gpus)
    settings["environment"][PROFILE_ENV] = profile.slug
    if res.gpus:
        gpu = gpu_types.get(res.gpu_type, {}) if res.gpu_type else {}
        resource = gpu.get("resource", gpu_resource)
        settings["extra_resource_limits"][resource] = str(res.gpus)
        settings["extra_resource_guarantees"][resource] = str(res.gpus)
        settings["node_selector"].update(gpu.get("node_selector", {}))
        settings["tolerations"] = settings["tolerations"] + list(gpu.get("tolerations", []))
        settings["node_affinity_required"] = settings["node_affinity_required"] + list(
            gpu.get("node_affinity_required", [])
        )
        if res.gpu_type:
            labels["aistudio.io/gpu-type"] = res.gpu_type
    else:
        # a CPU server sees no GPU even on a GPU node
        settings["environment"]["NVIDIA_VISIBLE_DEVICES"] = "void"
    if res.shm:
        settings["volumes"] = settings["volumes"] + [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": units.format_quantity(res.shm)}}
        ]
        settings["volume_mounts"] = settings["volume_mounts"] + [{"name": "dshm", "mountPath": "/dev/shm"}]
    volumes, mounts, _ = dataset_mounts.k8s_volumes(list(datasets))
    settings["volumes"] = settings["volumes"] + volumes
    settings["volume_mounts"] = settings["volume_mounts"] + mounts
    return settings


class DatasetMountFailed(web.HTTPError):
    """A granted dataset's volume cannot be mounted into the pod (its export or claim is gone):
    503, with a message the hub shows to the member."""

    def __init__(self, message: str):
        super().__init__(503, message)


def unmountable_dataset(events: list[dict], mounts) -> str | None:
    """The message for the first event saying a dataset's volume cannot be mounted, if any.

    Kubelets retry a failing mount until the start times out; this names the dataset at once.
    ``events``: the pod's events (KubeSpawner's ``events``); ``mounts``: its dataset MountSpecs.
    """
    claims = {m.claim: m.name for m in mounts if m.source_kind == "pvc" and m.claim}
    for event in events:
        message = event.get("message") or ""
        if event.get("reason") == "FailedMount":
            for m in mounts:
                if f'volume "{dataset_mounts.volume_name(m.name)}"' in message:
                    reason = message.split(" : ", 1)[-1].strip().splitlines()[-1].removeprefix("Output: ")
                    return f"Dataset {m.name} cannot be mounted: {reason}"
        elif event.get("reason") == "FailedScheduling":
            for claim, name in claims.items():
                if f'persistentvolumeclaim "{claim}" not found' in message:
                    return f"Dataset {name} cannot be mounted: its volume claim {claim} does not exist"
    return None


class StudioKubeSpawner(DatasetsSpawnerMixin, ProfileSpawnerMixin, KubeSpawner):
    """KubeSpawner driven by the quota profiles: the same form and the same launch
    decision as local mode, turned into pod resources by :func:`pod_settings`."""

    gpu_resource_name = Unicode(
        "nvidia.com/gpu", help="Extended resource that requests GPUs (a GPU type may name its own, e.g. a MIG profile)."
    ).tag(config=True)

    gpu_types = Dict(
        help="Per GPU type (a profile's gpu_type): {resource, node_selector, tolerations, node_affinity_required}."
    ).tag(config=True)

    request_fraction = Float(
        1.0, help="Requests as a fraction of the profile's limits (1.0: Guaranteed QoS for CPU and memory)."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._configured = {name: copy.deepcopy(getattr(self, name)) for name in LAUNCH_TRAITS}

    def apply_launch(self, launch: Launch, datasets=()) -> None:
        settings = pod_settings(
            launch,
            base=self._configured,
            gpu_resource=self.gpu_resource_name,
            gpu_types=self.gpu_types,
            request_fraction=self.request_fraction,
            datasets=datasets,
            images={name: env.get("image") for name, env in self.environments.items()},
        )
        for name, value in settings.items():
            setattr(self, name, value)

    async def gpu_capacity(self) -> dict:
        """The cluster's GPUs per GPU type, without this hub's own servers
        (:func:`hub_config.spawners.capacity.gpu_capacity`); raises ``CapacityUnknown``."""
        return await fetch_capacity(
            self.api,
            self.gpu_types,
            self.gpu_resource_name,
            namespace=self.namespace,
            component=self.component_label,
            base={name: self._configured[name] for name in ("node_selector", "tolerations", "node_affinity_required")},
        )

    def gpu_target(self) -> dict:
        return {"pod": self.pod_name, "namespace": self.namespace}

    def gpu_capacity_source(self):
        from ..queue.manager import ClusterCapacity

        return ClusterCapacity(self.gpu_capacity)

    async def load_user_options(self):
        """Called by KubeSpawner at start: decide the launch on the hub, then size the pod."""
        self.reset_progress()
        self.report(10, "Checking your profile and options")
        launch = self.decide_launch()
        mounts, gone = self.decide_datasets()
        self.apply_launch(launch, mounts)
        if self.max_runtime:
            self.environment[MAX_RUNTIME_ENV] = str(self.max_runtime)
        self.report(20, f"Profile {launch.profile.display_name}: {launch.resources.describe()}")
        skipped = dataset_mounts.k8s_volumes(mounts)[2]
        self.record_mounts(mounts, gone, dataset_mounts.K8S_MOUNT_ROOT, skipped)
        self._dataset_mounts = [m for m in mounts if m.name not in skipped]
        self.finish_reports()  # KubeSpawner's pod events follow

    def is_pod_running(self, pod):
        """KubeSpawner waits on this while the pod starts: a dataset that cannot be mounted
        fails the start with its name instead of a timeout."""
        running = super().is_pod_running(pod)
        if not running and pod is not None:
            problem = unmountable_dataset(self.events, getattr(self, "_dataset_mounts", []))
            if problem:
                self.log.warning("%s: %s", self._log_name, problem)
                raise DatasetMountFailed(problem)
        return running

    async def poll(self):
        status = await super().poll()
        if status is None and self.runtime_exceeded():
            self.log.warning("%s ran past its limit of %ss; stopping it", self._log_name, self.max_runtime)
            await self.stop()
            return 0
        return status

    async def progress(self):
        async for event in ProfileSpawnerMixin.progress(self):
            yield event
        async for event in KubeSpawner.progress(self):
            yield event
