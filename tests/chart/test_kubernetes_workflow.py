"""docs/kubernetes.md's real-cluster steps are the commands of the CI workflow that runs
them (.github/workflows/kubernetes.yaml), so a lab's engineer runs what CI runs."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "kubernetes.yaml"
# the workflow's names for what the docs spell out
SPELLED = {r'"\$RUNNER_TEMP/([^"]*)"': r"/tmp/\1", r'"\$CLUSTER"': "aistudio"}
# steps that only make sense on the CI service's runner
RUNNER_ONLY = ("Room for the images", "Kubeconfig of the cluster", "What the cluster says",
               "Python and the repository (scripts/setup.sh --test)")


def workflow_commands() -> list[str]:
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["kind"]
    commands = []
    for step in job["steps"]:
        if "run" not in step or step.get("name") in RUNNER_ONLY:
            continue
        for line in step["run"].splitlines():
            line = line.strip()
            for theirs, ours in SPELLED.items():
                line = re.sub(theirs, ours, line)
            if line and not line.startswith(("{", "}", "echo ", "done", "esac", "case")):
                commands.append(line.rstrip("\\").strip())
    return commands


def test_the_docs_give_every_command_the_workflow_runs():
    docs = " ".join((REPO / "docs" / "kubernetes.md").read_text().split())
    commands = workflow_commands()
    assert len(commands) >= 10
    missing = [c for c in commands if " ".join(c.split()) not in docs]
    assert not missing, f"in the workflow, not in docs/kubernetes.md: {missing}"


def test_the_workflow_pins_every_action_and_tool():
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["kind"]
    for step in job["steps"]:
        if "uses" in step:
            name, _, version = step["uses"].partition("@")
            assert version and version not in ("main", "master", "latest"), step["uses"]
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action"))
    assert kind["with"]["version"].startswith("v") and "@sha256:" in kind["with"]["node_image"]
