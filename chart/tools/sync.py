#!/usr/bin/env python3
"""Keep the chart in step with the studio: one source of truth, copied.

Helm sees only files inside chart/, so the chart carries copies of
  - spawner_profiles/*.yaml            -> chart/files/profiles/ (the shipped profiles)
  - hub_config/schema/studio.schema.json  -> values.schema.json $defs "studio*"
    (minus what the chart decides itself, see CHART_OWNED)
  - hub_config/schema/profiles.schema.json -> values.schema.json $defs "profileFile*"

    python3 chart/tools/sync.py           # update the copies
    python3 chart/tools/sync.py --check   # exit 1 and say what differs (tests/chart/test_chart.py)
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "chart"
VALUES_SCHEMA = CHART / "values.schema.json"
PROFILES_SRC = REPO / "spawner_profiles"
PROFILES_DST = CHART / "files" / "profiles"
STUDIO_SCHEMA = REPO / "hub_config" / "schema" / "studio.schema.json"
PROFILES_SCHEMA = REPO / "hub_config" / "schema" / "profiles.schema.json"

# Keys of the studio config the chart sets itself (templates/_helpers.tpl
# "aistudio.studioConfig"): refused in the values' studio section.
CHART_OWNED = {
    (): {"mode", "data_dir", "profiles_dir", "hub", "local", "gpus"},
    ("kubernetes",): {"namespace", "hub_connect_url"},
    ("datasets",): {"source_views"},  # from the chart's datasets.sources
}
GENERATED_PREFIXES = ("studio", "profileFile")
# Kubernetes objects the studio schema leaves open ({"type": "object"}): checked
# strictly in the values by the chart's own definitions.
STRICTER_ITEMS = {"tolerations": "#/$defs/toleration", "node_affinity_required": "#/$defs/nodeSelectorTerm"}


def _rewrite_refs(node, prefix: str):
    """``#/$defs/x`` -> ``#/$defs/<prefix>.x``, anywhere in ``node``."""
    if isinstance(node, dict):
        return {
            k: (f"#/$defs/{prefix}.{v.removeprefix('#/$defs/')}" if k == "$ref" and v.startswith("#/$defs/")
                else _rewrite_refs(v, prefix))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


def _embed(schema: dict, name: str, description: str) -> dict:
    """A standalone schema as $defs entries: ``name`` and ``name.<def>`` for its $defs."""
    schema = _rewrite_refs(copy.deepcopy(schema), name)
    defs = schema.pop("$defs", {})
    for key in ("$schema", "$id", "title"):
        schema.pop(key, None)
    schema["description"] = description
    out = {name: schema}
    out.update({f"{name}.{k}": v for k, v in defs.items()})
    return out


def _stricter(node):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "properties":
                value = {
                    name: ({**sub, "items": {"$ref": STRICTER_ITEMS[name]}}
                           if name in STRICTER_ITEMS and sub.get("items") == {"type": "object"} else _stricter(sub))
                    for name, sub in value.items()
                }
            else:
                value = _stricter(value)
            out[key] = value
        return out
    if isinstance(node, list):
        return [_stricter(v) for v in node]
    return node


def studio_defs() -> dict:
    schema = json.loads(STUDIO_SCHEMA.read_text())
    schema.pop("required", None)  # values override the defaults, key by key
    for path, owned in CHART_OWNED.items():
        node = schema
        for key in path:
            node = node["properties"][key]
        for key in owned:
            node["properties"].pop(key, None)
        if "required" in node:
            node["required"] = [k for k in node["required"] if k not in owned]
    defs = _embed(
        schema,
        "studio",
        "The studio config (hub_config/schema/studio.schema.json, copied by chart/tools/sync.py) "
        "without the keys the chart sets itself; rendered to /etc/aistudio/aistudio.yaml.",
    )
    return {name: _stricter(d) for name, d in defs.items()}


def profile_defs() -> dict:
    return _embed(
        json.loads(PROFILES_SCHEMA.read_text()),
        "profileFile",
        "A profile file (hub_config/schema/profiles.schema.json, copied by chart/tools/sync.py).",
    )


def expected_values_schema() -> dict:
    schema = json.loads(VALUES_SCHEMA.read_text())
    defs = {k: v for k, v in schema.get("$defs", {}).items() if k.split(".")[0] not in GENERATED_PREFIXES}
    defs.update(studio_defs())
    defs.update(profile_defs())
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


def expected_profile_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(PROFILES_SRC.glob("*.yaml"))}


def differences() -> list[str]:
    problems = []
    if json.loads(VALUES_SCHEMA.read_text()) != expected_values_schema():
        problems.append(f"{VALUES_SCHEMA.relative_to(REPO)}: the copies of the studio and profile schemas are out of date")
    actual = {p.name: p.read_text() for p in sorted(PROFILES_DST.glob("*.yaml"))}
    expected = expected_profile_files()
    for name in sorted(set(actual) | set(expected)):
        if actual.get(name) != expected.get(name):
            problems.append(f"{(PROFILES_DST / name).relative_to(REPO)}: differs from spawner_profiles/{name}")
    return problems


def sync() -> None:
    VALUES_SCHEMA.write_text(json.dumps(expected_values_schema(), indent=2, ensure_ascii=False) + "\n")
    PROFILES_DST.mkdir(parents=True, exist_ok=True)
    expected = expected_profile_files()
    for stale in PROFILES_DST.glob("*.yaml"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (PROFILES_DST / name).write_text(text)


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        problems = differences()
        for p in problems:
            print(p)
        if problems:
            print("run: python3 chart/tools/sync.py")
        return 1 if problems else 0
    if argv[1:]:
        print(__doc__)
        return 2
    sync()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
