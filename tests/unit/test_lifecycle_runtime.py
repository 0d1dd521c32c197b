"""The run-time decisions: time left, warnings, extensions within the policy."""

from hub_config.lifecycle import runtime
from hub_config.quotas import Limits


def test_time_left_and_warnings_due():
    assert runtime.time_left(1000.0, 3600, now=1000.0 + 3000) == 600
    assert runtime.time_left(1000.0, None, now=2000.0) is None
    assert runtime.warnings_due(2000, (1800, 300), set()) == []
    assert runtime.warnings_due(1700, (1800, 300), set()) == [1800]
    assert runtime.warnings_due(200, (1800, 300), {1800}) == [300]
    assert runtime.warnings_due(200, (1800, 300), set()) == [1800, 300]  # both reached at once
    assert runtime.warnings_due(200, (1800, 300), {1800, 300}) == []


def test_extensions_follow_the_policy_and_the_budget():
    limits = Limits(extend_by=3600, max_extensions=2, gpu_hours=10.0)
    assert runtime.may_extend(limits, 0, gpus=1, left=600, used_hours=2.0).seconds == 3600
    assert runtime.may_extend(limits, 2, gpus=1, left=600, used_hours=2.0).refusal == (
        "This server was already extended 2 of 2 times.")
    over = runtime.may_extend(limits, 0, gpus=2, left=3600, used_hours=7.0)
    assert over.seconds == 0 and over.refusal.startswith("Extending by 1h would take you past your GPU-hour budget")
    assert runtime.may_extend(Limits(), 0, gpus=0, left=600, used_hours=0).refusal.startswith(
        "Your quota does not allow extending servers")
    assert runtime.may_extend(Limits(extend_by=600), 1, gpus=0, left=60, used_hours=0).refusal == (
        "This server was already extended 1 of 1 times.")  # one extension by default
    group = runtime.may_extend(Limits(extend_by=3600), 0, gpus=1, left=0, used_hours=0,
                               group_budgets={"students": (99.5, 100.0)})
    assert group.refusal.startswith("Extending by 1h would take group students past its GPU-hour budget")
    assert runtime.may_extend(limits, 0, gpus=1, left=None, used_hours=0).refusal.startswith("This server has no")
