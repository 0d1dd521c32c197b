"""What the simulated API server refuses: every object is validated against the real
Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors) of
Kubernetes 1.30 and of the newest version it ships, and then by the rules a real API
server adds to the schemas (names, labels, quantities, references between fields,
enumerations, immutable fields). A refusal is a 422 ``Invalid`` naming the field."""

from __future__ import annotations

import re

import kubernetes_validate
from kubernetes_validate.utils import ValidationError, latest_version

from .store import ApiError

VERSIONS = ("1.30", latest_version())

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
VOLUME_SOURCES = {"hostPath", "emptyDir", "secret", "configMap", "persistentVolumeClaim", "nfs", "projected",
                  "downwardAPI", "ephemeral", "csi", "image"}
_SUFFIX = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(value) -> float:
    """A Kubernetes quantity ("500m", "2Gi", 4) as a number; ValueError when malformed."""
    text = str(value)
    if not QUANTITY.match(text):
        raise ValueError(text)
    m = re.match(r"^([+-]?[\d.]+)(.*)$", text)
    number, suffix = m.groups()
    if suffix[:1] in ("e", "E"):
        return float(text)
    return float(number) * _SUFFIX[suffix]


class Invalid:
    """Collects the causes of one object's refusal."""

    def __init__(self, kind: str, name: str):
        self.kind, self.name, self.causes = kind, name, []

    def add(self, field: str, message: str):
        self.causes.append((field, message))

    def check(self, ok: bool, field: str, message: str):
        if not ok:
            self.add(field, message)

    def raise_if_any(self):
        if self.causes:
            text = ", ".join(f"{f}: {m}" for f, m in self.causes)
            raise ApiError(422, "Invalid", f'{self.kind} "{self.name}" is invalid: {text}',
                           {"name": self.name, "kind": self.kind,
                            "causes": [{"field": f, "message": m, "reason": "FieldValueInvalid"} for f, m in self.causes]})


def field_path(parts) -> str:
    """A field as the API server names it: ``spec.containers[0].env``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_errors(obj: dict) -> list[tuple[str, str]]:
    out = []
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except ValidationError as e:
            path = field_path(e.absolute_path)
            extras = (sorted(set(e.instance) - set((e.schema or {}).get("properties") or {}))
                      if e.validator == "additionalProperties" and isinstance(e.instance, dict) else [])
            if extras:
                # name the unknown field itself, as strict decoding does: unknown field "spec.containers[0].foo"
                for extra in extras:
                    where = field_path([*e.absolute_path, extra])
                    if all(where != known for known, _ in out):  # one cause, whichever schema found it
                        out.append((where, f'unknown field "{where}" (not in the Kubernetes {version} schema)'))
            else:
                out.append((path or "<object>", f"{e.message} (Kubernetes {version} schema)"))
        except Exception as e:  # a kind or version the schemas do not know
            out.append(("apiVersion", f"{type(e).__name__}: {e}"))
    return out


def check_metadata(inv: Invalid, kind: str, meta: dict):
    name = meta.get("name", "")
    pattern, rule = {"services": (DNS1035_LABEL, "a DNS-1035 label"),
                     "namespaces": (DNS1123_LABEL, "a DNS-1123 label")}.get(kind, (DNS1123_SUBDOMAIN, "a DNS-1123 subdomain"))
    limit = 63 if pattern is not DNS1123_SUBDOMAIN else 253
    inv.check(bool(pattern.match(name)) and len(name) <= limit, "metadata.name",
              f'Invalid value: "{name}": must be {rule} (lower case alphanumerics and "-", at most {limit})')
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, base = key.rpartition("/")
        inv.check(bool(QUALIFIED_NAME.match(base)) and len(base) <= 63 and (not prefix or DNS1123_SUBDOMAIN.match(prefix)),
                  "metadata.labels", f'Invalid value: "{key}": a label key must be a qualified name')
        inv.check(isinstance(value, str) and bool(LABEL_VALUE.match(value)) and len(value) <= 63,
                  "metadata.labels", f'Invalid value: "{value}": a label value must be 63 characters or less, '
                                      "alphanumerics, '-', '_' or '.', starting and ending alphanumeric")


def check_resources(inv: Invalid, where: str, resources: dict):
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    parsed = {}
    for part, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            try:
                parsed[(part, name)] = quantity(value)
            except ValueError:
                inv.add(f"{where}.resources.{part}[{name}]", f'Invalid value: "{value}": quantities must match '
                                                             "the regular expression of a Kubernetes quantity")
    for name in set(limits) & set(requests):
        if ("limits", name) in parsed and ("requests", name) in parsed:
            inv.check(parsed[("requests", name)] <= parsed[("limits", name)], f"{where}.resources.requests",
                      f'Invalid value: "{requests[name]}": must be less than or equal to {name} limit of {limits[name]}')
    for name in set(limits) | set(requests):
        if "/" in name and not name.startswith(("kubernetes.io/", "hugepages-")):
            for part in ("limits", "requests"):
                if (part, name) in parsed:
                    inv.check(parsed[(part, name)] == int(parsed[(part, name)]), f"{where}.resources.{part}[{name}]",
                              "must be an integer")
            if name in requests and name in limits:
                inv.check(parsed.get(("requests", name)) == parsed.get(("limits", name)), f"{where}.resources.requests",
                          f"must be equal to {name} limit (overcommit is not allowed for extended resources)")
            elif name in requests:
                inv.add(f"{where}.resources.limits", f"Required value: limit must be set for non overcommitable resource {name}")


def check_pod_spec(inv: Invalid, spec: dict):
    volumes = {}
    for i, volume in enumerate(spec.get("volumes") or []):
        where = f"spec.volumes[{i}]"
        name = volume.get("name", "")
        inv.check(bool(DNS1123_LABEL.match(name)), f"{where}.name", f'Invalid value: "{name}": must be a DNS-1123 label')
        inv.check(name not in volumes, f"{where}.name", f'Duplicate value: "{name}"')
        sources = VOLUME_SOURCES & set(volume)
        inv.check(len(sources) == 1, where, "must specify exactly one volume source"
                  if sources else "Required value: must specify a volume type")
        if "hostPath" in volume:
            path = volume["hostPath"].get("path", "")
            inv.check(path.startswith("/"), f"{where}.hostPath.path", "must be an absolute path")
        if "nfs" in volume:
            inv.check(bool(volume["nfs"].get("server")), f"{where}.nfs.server", "Required value")
            inv.check(str(volume["nfs"].get("path", "")).startswith("/"), f"{where}.nfs.path", "must be an absolute path")
        volumes[name] = volume
    inv.check(spec.get("restartPolicy", "Always") in ("Always", "OnFailure", "Never"), "spec.restartPolicy",
              f'Unsupported value: "{spec.get("restartPolicy")}": supported values: "Always", "Never", "OnFailure"')
    containers = spec.get("containers") or []
    inv.check(bool(containers), "spec.containers", "Required value")
    seen = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            where = f"spec.{group}[{i}]"
            name = c.get("name", "")
            inv.check(bool(DNS1123_LABEL.match(name)), f"{where}.name", f'Invalid value: "{name}": must be a DNS-1123 label')
            inv.check(name not in seen, f"{where}.name", f'Duplicate value: "{name}"')
            seen.add(name)
            inv.check(bool(c.get("image")), f"{where}.image", "Required value")
            policy = c.get("imagePullPolicy")
            inv.check(policy in (None, "Always", "IfNotPresent", "Never"), f"{where}.imagePullPolicy",
                      f'Unsupported value: "{policy}": supported values: "Always", "IfNotPresent", "Never"')
            for j, env in enumerate(c.get("env") or []):
                inv.check(bool(ENV_NAME.match(env.get("name", ""))), f"{where}.env[{j}].name",
                          f'Invalid value: "{env.get("name")}": a valid environment variable name')
                inv.check(not ("value" in env and "valueFrom" in env), f"{where}.env[{j}].valueFrom",
                          "may not be specified when `value` is not empty")
            paths = set()
            for j, mount in enumerate(c.get("volumeMounts") or []):
                mw = f"{where}.volumeMounts[{j}]"
                inv.check(mount.get("name") in volumes, f"{mw}.name", f'Not found: "{mount.get("name")}"')
                path = mount.get("mountPath", "")
                inv.check(path.startswith("/") and path not in paths, f"{mw}.mountPath",
                          f'Invalid value: "{path}": must be absolute and unique')
                paths.add(path)
                rro = mount.get("recursiveReadOnly")
                if rro not in (None, "Disabled"):
                    inv.check(rro in ("Enabled", "IfPossible"), f"{mw}.recursiveReadOnly", f'Unsupported value: "{rro}"')
                    inv.check(mount.get("readOnly") is True, f"{mw}.recursiveReadOnly",
                              "may only be specified when readOnly is true")
            for j, port in enumerate(c.get("ports") or []):
                inv.check(0 < int(port.get("containerPort", 0)) < 65536, f"{where}.ports[{j}].containerPort",
                          "must be between 1 and 65535, inclusive")
            check_resources(inv, where, c.get("resources") or {})
            sc = c.get("securityContext") or {}
            if sc.get("runAsUser") is not None:
                inv.check(sc["runAsUser"] >= 0, f"{where}.securityContext.runAsUser", "must be between 0 and 2147483647")
    for i, t in enumerate(spec.get("tolerations") or []):
        op = t.get("operator", "Equal")
        inv.check(op in ("Equal", "Exists"), f"spec.tolerations[{i}].operator", f'Unsupported value: "{op}"')
        inv.check(not (op == "Exists" and t.get("value")), f"spec.tolerations[{i}].operator",
                  "value must be empty when `operator` is 'Exists'")
        inv.check(t.get("effect") in (None, "", "NoSchedule", "PreferNoSchedule", "NoExecute"),
                  f"spec.tolerations[{i}].effect", f'Unsupported value: "{t.get("effect")}"')


def check_pvc(inv: Invalid, spec: dict):
    modes = spec.get("accessModes") or []
    inv.check(bool(modes), "spec.accessModes", "Required value: at least 1 access mode is required")
    for mode in modes:
        inv.check(mode in ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"), "spec.accessModes",
                  f'Unsupported value: "{mode}"')
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    inv.check(storage is not None, "spec.resources[storage]", "Required value")
    if storage is not None:
        try:
            inv.check(quantity(storage) > 0, "spec.resources[storage]", "must be greater than zero")
        except ValueError:
            inv.add("spec.resources[storage]", f'Invalid value: "{storage}": not a quantity')


def validate(kind: str, obj: dict):
    """Refuse ``obj`` (a whole object: apiVersion, kind, metadata...) as a real API server would."""
    meta = obj.get("metadata") or {}
    inv = Invalid(obj.get("kind", kind), meta.get("name") or meta.get("generateName") or "")
    for field, message in schema_errors(obj):
        inv.add(field, message)
    inv.raise_if_any()  # the rules below assume the schema's shapes
    check_metadata(inv, kind, meta)
    if kind == "pods":
        check_pod_spec(inv, obj.get("spec") or {})
    elif kind == "persistentvolumeclaims":
        check_pvc(inv, obj.get("spec") or {})
    elif kind == "services":
        for i, port in enumerate((obj.get("spec") or {}).get("ports") or []):
            inv.check(0 < int(port.get("port", 0)) < 65536, f"spec.ports[{i}].port", "must be between 1 and 65535")
    inv.raise_if_any()


def validate_update(kind: str, old: dict, new: dict):
    """Fields a real API server keeps immutable on update/patch."""
    validate(kind, new)
    inv = Invalid(new.get("kind", kind), new["metadata"]["name"])
    if kind == "pods":
        # only images, activeDeadlineSeconds and tolerations may change (nodeName: by binding only)
        def frozen(spec):
            spec = {k: v for k, v in spec.items()
                    if k not in ("activeDeadlineSeconds", "tolerations", "schedulingGates", "nodeName")}
            spec["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers", [])]
            return spec
        inv.check(frozen(old.get("spec") or {}) == frozen(new.get("spec") or {}), "spec",
                  "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                  "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations)")
    elif kind == "persistentvolumeclaims":
        def frozen(spec):
            spec = dict(spec)
            spec.pop("resources", None)
            spec.pop("volumeName", None)
            return spec
        inv.check(frozen(old.get("spec") or {}) == frozen(new.get("spec") or {}), "spec",
                  "Forbidden: spec is immutable after creation except resources.requests for bound claims")
    inv.raise_if_any()
