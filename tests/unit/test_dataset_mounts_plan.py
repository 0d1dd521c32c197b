"""The local mounts of a server start, decided by a pure function before anything is touched."""

from hub_config.datasets import MountSpec
from hub_config.datasets.mounts import group_name, plan_local

GRANTED = [
    MountSpec("alpha", "local", "/srv/data/alpha"),
    MountSpec("beta", "pvc", None, claim="beta-claim"),  # a pod's volume: nothing to link here
    MountSpec("gamma", "local", None),  # registered without a folder on this machine
    MountSpec("a-dataset-with-a-really-long-name-x", "local", "/srv/data/long"),
]


def test_system_accounts_get_a_link_and_a_group_per_local_dataset():
    plan = plan_local(GRANTED, published={"alpha", "beta", "gamma", "delta"}, system=True, root="/datasets",
                      group_prefix="aistudio-ds-")
    assert plan.root == "/datasets"
    assert plan.links == {"alpha": "/srv/data/alpha", "a-dataset-with-a-really-long-name-x": "/srv/data/long"}
    assert plan.groups == {name: group_name("aistudio-ds-", name) for name in plan.links}
    assert all(len(g) <= 32 for g in plan.groups.values())  # valid system group names
    assert plan.skipped == ("beta", "gamma")
    assert plan.published == frozenset({"alpha", "beta", "gamma", "delta"})


def test_shared_demo_accounts_get_links_only():
    plan = plan_local(GRANTED, published=["alpha"], system=False, root="/home/demo/datasets", group_prefix="p-")
    assert set(plan.links) == {"alpha", "a-dataset-with-a-really-long-name-x"} and plan.groups == {}


def test_nothing_granted_plans_nothing_but_pruning():
    plan = plan_local([], published={"alpha"}, system=True, root="/datasets", group_prefix="p-")
    assert plan.links == {} and plan.groups == {} and plan.skipped == () and plan.published == {"alpha"}
