"""The simulated cluster's controllers: a volume provisioner that binds claims to
folders, a scheduler that places pods on the configured nodes (node selectors,
required node affinity, taints and tolerations, requested CPU, memory and extended
resources such as nvidia.com/gpu), and a kubelet stand-in that mounts each pod's
volumes and runs its container as a local process (``podrun``), reporting status and
events as a kubelet does.

Networking: every pod gets its own loopback address (127.1.x.y) as its pod IP. A
container that binds all addresses (0.0.0.0, as JupyterHub's single-user server is
told to) is given its pod IP instead, which is what binding all addresses means in a
pod's own network namespace. There is no cluster DNS and no Service routing."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

from .store import ApiError, Store, now_iso
from .validation import quantity

HERE = Path(__file__).resolve().parent


def _match_expression(labels: dict, expr: dict) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels:
        a, b = int(labels[key]), int(values[0])
        return a > b if op == "Gt" else a < b
    return False


def tolerates(tolerations: list, taint: dict) -> bool:
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("key") and t["key"] != taint["key"]:
            continue
        if t.get("operator", "Equal") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def pod_requests(pod: dict) -> dict[str, float]:
    total: dict[str, float] = {}
    for c in pod["spec"]["containers"]:
        for name, value in ((c.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0) + quantity(value)
    return total


class Kubelet:
    """Scheduler, provisioner and kubelet of every node, in the API server's process."""

    def __init__(self, cluster, state_dir: Path, images: dict, nfs_root: Path):
        self.cluster = cluster
        self.store: Store = cluster.store
        self.state = state_dir
        self.images = images  # image name pattern -> {command, env, working_dir, user}
        self.nfs_root = nfs_root  # NFS server S export /p is the folder nfs_root/S/p
        self.running: dict[tuple[str, str], dict] = {}  # (ns, pod) -> {proc, ip, task}
        self.next_ip = 1
        cluster.kubelet = self
        self.store.listeners.append(self.on_event)
        self.loop = asyncio.get_event_loop()
        self._retry = None

    # --------------------------------------------------------------- events and status

    def event(self, obj: dict, reason: str, message: str, type_="Normal", component="kubelet"):
        meta = obj["metadata"]
        name = f"{meta['name']}.{time.time_ns():x}"
        self.store.create("events", meta.get("namespace") or "default", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": meta.get("namespace") or "default"},
            "involvedObject": {"kind": obj["kind"], "namespace": meta.get("namespace"), "name": meta["name"],
                               "uid": meta["uid"], "apiVersion": "v1", "resourceVersion": meta["resourceVersion"]},
            "reason": reason, "message": message, "type": type_, "source": {"component": component},
            "firstTimestamp": now_iso(), "lastTimestamp": now_iso(), "count": 1,
            "reportingComponent": component, "reportingInstance": "simulated",
        })

    def patch_pod(self, ns: str, name: str, change) -> dict | None:
        pod = self.store.find("pods", ns, name)
        if pod is None:
            return None
        pod = copy.deepcopy(pod)
        change(pod)
        return self.store.update("pods", ns, pod)

    def set_condition(self, pod: dict, type_: str, status: str, reason: str | None = None, message: str | None = None):
        conditions = [c for c in pod["status"].get("conditions", []) if c["type"] != type_]
        condition = {"type": type_, "status": status, "lastTransitionTime": now_iso(), "lastProbeTime": None}
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        pod["status"]["conditions"] = conditions + [condition]

    # --------------------------------------------------------------- reacting to changes

    def on_event(self, event):
        if event.kind == "pods":
            pod = event.obj
            key = (event.namespace, pod["metadata"]["name"])
            if event.type == "ADDED":
                self.loop.call_soon(self.schedule_pending)
            elif event.type == "DELETED":
                self.loop.call_soon(self.schedule_pending)
            elif pod["metadata"].get("deletionTimestamp") and key in self.running and not self.running[key].get("stopping"):
                self.running[key]["stopping"] = True
                self.loop.create_task(self.terminate(event.namespace, pod["metadata"]["name"]))
        elif event.kind == "persistentvolumeclaims" and event.type == "ADDED":
            self.loop.call_soon(self.provision, event.namespace, event.obj["metadata"]["name"])

    # --------------------------------------------------------------- storage

    def claim_dir(self, ns: str, claim: str) -> Path:
        return self.state / "volumes" / "pvc" / ns / claim

    def provision(self, ns: str, name: str):
        pvc = self.store.find("persistentvolumeclaims", ns, name)
        if pvc is None or pvc["status"].get("phase") == "Bound":
            return
        storage_class = pvc["spec"].get("storageClassName")
        if storage_class not in (None, "", "standard"):
            self.event(pvc, "ProvisioningFailed", f'storageclass.storage.k8s.io "{storage_class}" not found',
                       "Warning", "persistentvolume-controller")
            return
        self.claim_dir(ns, name).mkdir(parents=True, exist_ok=True)

        def bind(obj):
            obj["spec"]["volumeName"] = f"pvc-{obj['metadata']['uid']}"
            obj["spec"].setdefault("storageClassName", "standard")
            obj["status"] = {"phase": "Bound", "accessModes": obj["spec"]["accessModes"],
                             "capacity": {"storage": obj["spec"]["resources"]["requests"]["storage"]}}
        pvc = copy.deepcopy(pvc)
        bind(pvc)
        self.store.update("persistentvolumeclaims", ns, pvc)
        self.loop.call_soon(self.schedule_pending)

    def claim_in_use(self, ns: str, claim: str) -> bool:
        for pod in self.store.list("pods", ns):
            for v in pod["spec"].get("volumes") or []:
                if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim:
                    return True
        return False

    def release_claims(self, ns: str):
        for pvc in self.store.list("persistentvolumeclaims", ns):
            name = pvc["metadata"]["name"]
            if pvc["metadata"].get("deletionTimestamp") and not self.claim_in_use(ns, name):
                self.store.remove("persistentvolumeclaims", ns, name)

    # --------------------------------------------------------------- scheduling

    def schedule_pending(self):
        for pod in self.store.list("pods", None):
            if not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                self.schedule(pod)

    def schedule(self, pod: dict):
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for v in pod["spec"].get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                pvc = self.store.find("persistentvolumeclaims", ns, claim)
                problem = (f'persistentvolumeclaim "{claim}" not found' if pvc is None else
                           'pod has unbound immediate PersistentVolumeClaims' if pvc["status"].get("phase") != "Bound"
                           else None)
                if problem:
                    return self.unschedulable(pod, f"0/{len(self.nodes())} nodes are available: {problem}.")
        reasons: dict[str, int] = {}
        wanted = pod_requests(pod)
        for node in self.nodes():
            why = self.misfit(pod, node, wanted)
            if why is None:
                return self.bind(ns, name, node)
            reasons[why] = reasons.get(why, 0) + 1
        summary = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
        self.unschedulable(pod, f"0/{len(self.nodes())} nodes are available: {summary}.")

    def nodes(self) -> list[dict]:
        return self.store.list("nodes", None)

    def misfit(self, pod: dict, node: dict, wanted: dict) -> str | None:
        labels = node["metadata"].get("labels") or {}
        spec = pod["spec"]
        if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
            return "node(s) didn't match Pod's node affinity/selector"
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
        if required and not any(all(_match_expression(labels, e) for e in term.get("matchExpressions") or [])
                                for term in required):
            return "node(s) didn't match Pod's node affinity/selector"
        for taint in node["spec"].get("taints") or []:
            if taint["effect"] in ("NoSchedule", "NoExecute") and not tolerates(spec.get("tolerations"), taint):
                return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
        allocatable = {k: quantity(v) for k, v in node["status"]["allocatable"].items()}
        used: dict[str, float] = {}
        for other in self.store.list("pods", None):
            if other["spec"].get("nodeName") == node["metadata"]["name"] and \
                    other["status"].get("phase") not in ("Succeeded", "Failed"):
                for k, v in pod_requests(other).items():
                    used[k] = used.get(k, 0) + v
        for resource, amount in sorted(wanted.items()):
            if amount > allocatable.get(resource, 0) - used.get(resource, 0) + 1e-9:
                return f"Insufficient {resource}"
        return None

    def unschedulable(self, pod: dict, message: str):
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        conditions = {c["type"]: c for c in pod["status"].get("conditions", [])}
        if (conditions.get("PodScheduled") or {}).get("message") == message:
            return  # told already
        self.event(pod, "FailedScheduling", message, "Warning", "default-scheduler")
        self.patch_pod(ns, name, lambda p: self.set_condition(p, "PodScheduled", "False", "Unschedulable", message))

    def bind(self, ns: str, name: str, node: dict):
        node_name = node["metadata"]["name"]

        def place(p):
            p["spec"]["nodeName"] = node_name
            self.set_condition(p, "PodScheduled", "True")
        pod = self.patch_pod(ns, name, place)
        self.event(pod, "Scheduled", f"Successfully assigned {ns}/{name} to {node_name}", component="default-scheduler")
        self.loop.create_task(self.run_pod(ns, name))

    # --------------------------------------------------------------- running

    def pod_dir(self, pod: dict) -> Path:
        return self.state / "pods" / pod["metadata"]["namespace"] / f"{pod['metadata']['name']}-{pod['metadata']['uid'][:8]}"

    def image_of(self, image: str) -> dict:
        for pattern, settings in self.images.items():
            if re.fullmatch(pattern.replace(".", r"\.").replace("*", ".*"), image):
                return settings
        raise KeyError(image)

    def resolve_volume(self, pod: dict, volume: dict, base: Path) -> tuple[str | None, str | None]:
        """(folder on this machine, None) or (None, why it cannot be mounted)."""
        ns = pod["metadata"]["namespace"]
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            return str(self.claim_dir(ns, volume["persistentVolumeClaim"]["claimName"])), None
        if "hostPath" in volume:
            path, type_ = volume["hostPath"]["path"], volume["hostPath"].get("type", "")
            if type_ == "DirectoryOrCreate":
                os.makedirs(path, exist_ok=True)
            if type_ in ("Directory", "DirectoryOrCreate") and not os.path.isdir(path):
                return None, f"hostPath type check failed: {path} is not a directory"
            return path, None
        if "nfs" in volume:
            export = self.nfs_root / volume["nfs"]["server"] / volume["nfs"]["path"].lstrip("/")
            if not export.is_dir():
                return None, (f"mount failed: exit status 32\nMounting command: mount\nMounting arguments: -t nfs "
                              f"{volume['nfs']['server']}:{volume['nfs']['path']}\nOutput: mount.nfs: access denied "
                              f"by server while mounting {volume['nfs']['server']}:{volume['nfs']['path']}")
            return str(export), None
        folder = base / "volumes" / name
        folder.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            os.chmod(folder, 0o777)  # as the kubelet makes an emptyDir: writable by any user the pod runs as
            return str(folder), None
        for source_kind, kind in (("secret", "secrets"), ("configMap", "configmaps")):
            if source_kind in volume:
                ref = volume[source_kind]
                obj = self.store.find(kind, ns, ref.get("secretName") or ref.get("name"))
                if obj is None:
                    return None, f'{kind[:-1]} "{ref.get("secretName") or ref.get("name")}" not found'
                import base64
                for key, value in (obj.get("data") or {}).items():
                    data = base64.b64decode(value) if kind == "secrets" else value.encode()
                    (folder / key).write_bytes(data)
                return str(folder), None
        return None, f"volume {name}: this kind of volume is not simulated"

    def container_env(self, pod: dict, container: dict, image: dict, ip: str) -> dict:
        ns = pod["metadata"]["namespace"]
        env = dict(image.get("env") or {})
        for source in container.get("envFrom") or []:
            for key, kind in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
                if key in source:
                    obj = self.store.get(kind, ns, source[key]["name"])
                    env.update(self._data(obj, kind))
        fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns, "status.podIP": ip,
                  "spec.nodeName": pod["spec"].get("nodeName", ""), "metadata.uid": pod["metadata"]["uid"]}
        for item in container.get("env") or []:
            if "valueFrom" not in item:
                env[item["name"]] = expand(item.get("value", ""), env)
                continue
            ref = item["valueFrom"]
            if "fieldRef" in ref:
                env[item["name"]] = fields.get(ref["fieldRef"]["fieldPath"], "")
            elif "secretKeyRef" in ref or "configMapKeyRef" in ref:
                key_ref, kind = (ref["secretKeyRef"], "secrets") if "secretKeyRef" in ref else (ref["configMapKeyRef"], "configmaps")
                obj = self.store.find(kind, ns, key_ref["name"])
                data = self._data(obj, kind) if obj else {}
                if key_ref["key"] in data:
                    env[item["name"]] = data[key_ref["key"]]
                elif not key_ref.get("optional"):
                    raise ApiError(400, "CreateContainerConfigError",
                                   f'couldn\'t find key {key_ref["key"]} in {kind[:-1]} {ns}/{key_ref["name"]}')
            elif "resourceFieldRef" in ref:
                resource = ref["resourceFieldRef"]["resource"]
                part, _, name = resource.partition(".")
                value = ((container.get("resources") or {}).get(part) or {}).get(name, "0")
                env[item["name"]] = str(int(quantity(value)))
        return {k: v.replace("0.0.0.0", ip) for k, v in env.items()}

    @staticmethod
    def _data(obj: dict, kind: str) -> dict:
        import base64
        data = obj.get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()} if kind == "secrets" else dict(data)

    async def run_pod(self, ns: str, name: str):
        pod = self.store.find("pods", ns, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        container = pod["spec"]["containers"][0]  # the simulation runs a pod's first container
        key = (ns, name)
        base = self.pod_dir(pod)
        base.mkdir(parents=True, exist_ok=True)
        ip = f"127.1.{self.next_ip // 250}.{self.next_ip % 250 + 1}"
        self.next_ip += 1
        self.running[key] = {"ip": ip, "proc": None, "dir": base}
        # volumes: a kubelet retries a mount that fails, and says why each time
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        mounts = []
        while True:
            problems, mounts = [], []
            for m in container.get("volumeMounts") or []:
                source, why = self.resolve_volume(pod, volumes[m["name"]], base)
                if why:
                    problems.append(f'MountVolume.SetUp failed for volume "{m["name"]}" : {why}')
                    continue
                if m.get("subPath"):
                    source = os.path.join(source, m["subPath"])
                    os.makedirs(source, exist_ok=True)
                mounts.append({"source": source, "path": m["mountPath"], "read_only": bool(m.get("readOnly")),
                               "volume": volumes[m["name"]]})
            if not problems:
                break
            for problem in problems:
                self.event(pod, "FailedMount", problem, "Warning")
            await asyncio.sleep(5)
            pod = self.store.find("pods", ns, name)
            if pod is None or pod["metadata"].get("deletionTimestamp") or self.running[key].get("stopping"):
                return
        pod_sc = pod["spec"].get("securityContext") or {}
        sc = {**pod_sc, **(container.get("securityContext") or {})}
        fs_group = pod_sc.get("fsGroup")
        for m in mounts:  # fsGroup: the kubelet makes claims and emptyDirs group-owned and group-writable
            kind = set(m["volume"]) & {"persistentVolumeClaim", "emptyDir"}
            if fs_group is not None and kind and not m["read_only"]:
                for dirpath, dirnames, filenames in os.walk(m["source"]):
                    for entry in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
                        os.lchown(entry, -1, fs_group)
                        if not os.path.islink(entry):
                            mode = os.lstat(entry).st_mode
                            os.chmod(entry, mode | 0o060 | (0o2010 if os.path.isdir(entry) else 0))
        try:
            image = self.image_of(container["image"])
        except KeyError:
            self.event(pod, "Failed", f'Failed to pull image "{container["image"]}": not found', "Warning")
            return self._waiting(ns, name, container, "ErrImagePull", f'image "{container["image"]}" not found')
        self.event(pod, "Pulling", f'Pulling image "{container["image"]}"')
        self.event(pod, "Pulled", f'Successfully pulled image "{container["image"]}" in 0s (simulated)')
        uid = sc.get("runAsUser", image.get("user", 0))
        if sc.get("runAsNonRoot") and uid == 0:
            message = "container has runAsNonRoot and image will run as root"
            self.event(pod, "Failed", f"Error: {message}", "Warning")
            return self._waiting(ns, name, container, "CreateContainerConfigError", message)
        try:
            env = self.container_env(pod, container, image, ip)
        except ApiError as e:
            self.event(pod, "Failed", f"Error: {e.message}", "Warning")
            return self._waiting(ns, name, container, "CreateContainerConfigError", e.message)
        argv = [expand(a, env) for a in (container.get("command") or image["command"])] + \
               [expand(a, env) for a in (container.get("args") or ([] if container.get("command") else image.get("args", [])))]
        argv = [a.replace("0.0.0.0", ip) for a in argv]
        groups = list(pod_sc.get("supplementalGroups") or []) + ([fs_group] if fs_group is not None else [])
        spec = {"dir": str(base), "mounts": [{k: v for k, v in m.items() if k != "volume"} for m in mounts],
                "host_dirs": image.get("host_dirs", []), "empty_dirs": image.get("empty_dirs", []),
                "working_dir": container.get("workingDir") or image.get("working_dir"),
                "uid": uid, "gid": sc.get("runAsGroup", 0), "groups": groups,
                "no_new_privs": sc.get("allowPrivilegeEscalation") is False, "env": env, "argv": argv}
        (base / "spec.json").write_text(json.dumps(spec))
        self.event(pod, "Created", f"Created container: {container['name']}")
        restarts = 0
        while True:
            log = open(base / "log", "ab")
            proc = await asyncio.create_subprocess_exec(
                "unshare", "--mount", "--propagation", "private", sys.executable, "-m", "simulated_cluster.podrun",
                str(base / "spec.json"), stdout=log, stderr=log, cwd=str(HERE.parent), start_new_session=True,
                env={"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(HERE.parent)})
            log.close()
            self.running[key]["proc"] = proc
            self.event(pod, "Started", f"Started container {container['name']}")
            started = now_iso()

            def running(p):
                p["status"].update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
                                    "hostIPs": [{"ip": "127.0.0.1"}], "startTime": p["status"].get("startTime", started)})
                p["status"]["containerStatuses"] = [{
                    "name": container["name"], "image": container["image"], "imageID": f"simulated://{container['image']}",
                    "containerID": f"simulated://{proc.pid}", "ready": True, "started": True, "restartCount": restarts,
                    "state": {"running": {"startedAt": started}}, "lastState": {}}]
                for type_ in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"):
                    self.set_condition(p, type_, "True")
            self.patch_pod(ns, name, running)
            code = await proc.wait()
            if self.running.get(key, {}).get("stopping"):
                return
            policy = pod["spec"].get("restartPolicy", "Always")
            finished = now_iso()
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                          "startedAt": started, "finishedAt": finished}

            def stopped(p, restart=False):
                status = p["status"]["containerStatuses"][0]
                status.update({"ready": False, "started": False, "restartCount": restarts})
                if restart:
                    status["lastState"] = {"terminated": terminated}
                    status["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                                   "message": f"back-off restarting failed container {container['name']}"}}
                else:
                    status["state"] = {"terminated": terminated}
                    p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
                for type_ in ("ContainersReady", "Ready"):
                    self.set_condition(p, type_, "False", "ContainersNotReady")
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                restarts += 1
                self.patch_pod(ns, name, lambda p: stopped(p, True))
                self.event(pod, "BackOff", f"Back-off restarting failed container {container['name']}", "Warning")
                await asyncio.sleep(min(10 * 2 ** (restarts - 1), 300) / 10)
                if self.running.get(key, {}).get("stopping") or self.store.find("pods", ns, name) is None:
                    return
                continue
            self.patch_pod(ns, name, stopped)
            return

    def _waiting(self, ns, name, container, reason, message):
        def waiting(p):
            p["status"]["containerStatuses"] = [{"name": container["name"], "image": container["image"], "imageID": "",
                                                 "ready": False, "started": False, "restartCount": 0,
                                                 "state": {"waiting": {"reason": reason, "message": message}},
                                                 "lastState": {}}]
        self.patch_pod(ns, name, waiting)

    # --------------------------------------------------------------- stopping

    def delete_pod(self, pod: dict, grace: int | None) -> dict:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        if (ns, name) not in self.running:
            removed = self.store.remove("pods", ns, name)
            self.release_claims(ns)
            return removed
        if pod["metadata"].get("deletionTimestamp"):
            return pod

        def mark(p):
            p["metadata"]["deletionTimestamp"] = now_iso()
            p["metadata"]["deletionGracePeriodSeconds"] = grace
        self.running[(ns, name)]["grace"] = grace
        return self.patch_pod(ns, name, mark)

    async def terminate(self, ns: str, name: str):
        entry = self.running[(ns, name)]
        pod = self.store.find("pods", ns, name)
        proc = entry.get("proc")
        if pod is not None:
            self.event(pod, "Killing", f"Stopping container {pod['spec']['containers'][0]['name']}")
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), max(entry.get("grace", 30), 0.1))
            except asyncio.TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            except ProcessLookupError:
                pass
        self.running.pop((ns, name), None)
        if self.store.find("pods", ns, name) is not None:
            self.store.remove("pods", ns, name)
        self.release_claims(ns)

    async def shutdown(self):
        """Stop every container (the simulated cluster is going away)."""
        for (ns, name), entry in list(self.running.items()):
            entry["stopping"] = True
            entry["grace"] = 2
            await self.terminate(ns, name)

    def log_of(self, pod: dict) -> str:
        path = self.pod_dir(pod) / "log"
        return path.read_text(errors="replace") if path.exists() else ""


def expand(text: str, env: dict) -> str:
    """$(VAR) references, as the kubelet expands them ($$ escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)
