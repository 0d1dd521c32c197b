"""The queue in the hub process (manager) on a real usage database, SQLite and PostgreSQL,
with a real GPU allocator: the launch decision, joining, reservations, lapses, restarts."""

import time

import pytest

from hub_config import quotas
from hub_config.gpus import GPU, GPUAllocator
from hub_config.queue.core import RESERVED
from hub_config.queue.manager import AllocatorCapacity, GPUQueue, MustWait, Wanted
from hub_config.queue.store import AlreadyQueued
from hub_config.quotas import Limits, QueueSettings, QuotaPolicy
from hub_config.usage.store import UsageStore

pytestmark = pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)

ONE = Wanted(1, "a100")


class Lab:
    """A hub's queue with servers that start (usage record + devices) and stop."""

    def __init__(self, url, gpus=1, policy=None):
        self.url = url
        self.allocator = GPUAllocator([GPU(i, "a100") for i in range(gpus)])
        self.policy = policy or QuotaPolicy()
        self.open()
        self.servers = {}

    def open(self):
        self.usage = UsageStore(self.url)
        self.queue = GPUQueue(self.usage, lambda: self.policy, AllocatorCapacity(self.allocator))

    def start(self, user, groups=(), wanted=ONE):
        self.queue.admit(user, groups, wanted)
        usage_id = self.usage.open(user, "", groups, "gpu-1", wanted.gpus, wanted.gpu_type, 1, 2**30)
        self.allocator.allocate(user, wanted.gpus, wanted.gpu_type)
        self.servers[user] = usage_id

    def stop(self, user, now=None):
        self.usage.close(self.servers.pop(user), now=now)
        self.allocator.release(user)
        return self.queue.rebalance()

    def state(self):
        return {e.user: e.state for e in self.queue.store.entries()}


def test_two_members_one_gpu_the_second_waits_gets_a_reservation_and_starts(database):
    lab = Lab(database("usage"))
    lab.start("alice")
    with pytest.raises(MustWait) as refused:
        lab.start("bob")
    assert refused.value.status == 409 and "No A100 is free for you now" in str(refused.value)
    entry = lab.queue.join("bob", (), ONE, server_name="", profile="gpu-1", user_options={"profile": "gpu-1"})
    [row] = lab.queue.view()
    assert (row["user"], row["place"], row["state"]) == ("bob", 1, "waiting")
    assert row["estimated_wait"] is not None and row["estimated_wait"] > 0
    made = lab.stop("alice")
    assert [(e.user, e.state) for e in made] == [("bob", RESERVED)]
    with pytest.raises(MustWait) as taken:  # a third member cannot take bob's GPU
        lab.start("carol")
    assert "reserved for members in the queue" in str(taken.value)
    lab.start("bob")  # bob's reservation is his
    assert lab.queue.store.entries() == [] and lab.allocator.held_by("bob")
    assert entry.id > 0


def test_a_lapsed_reservation_passes_to_the_next_in_line(database):
    lab = Lab(database("usage"))
    lab.policy = QuotaPolicy(queue=QueueSettings(order="arrival", claim_timeout=60))
    lab.start("alice")
    for user in ("bob", "carol"):
        lab.queue.join(user, (), ONE, server_name="", profile="gpu-1", user_options={})
    lab.stop("alice")
    assert lab.state() == {"bob": RESERVED, "carol": "waiting"}
    lab.queue.rebalance(now=time.time() + 61)  # bob did not come
    assert lab.state() == {"carol": RESERVED}


def test_forty_members_two_gpus_fair_share_order_caps_and_a_restart(database):
    url = database("usage")
    lab = Lab(url, gpus=2)
    now = time.time()
    # GPU-hours used this period: member i used (40 - i) hours, so the last to come goes first
    for i in range(40):
        usage_id = lab.usage.open(f"m{i:02d}", "", (), "gpu-1", 1, "a100", 1, 2**30, now=now - 3600 * (40 - i) - 60)
        lab.usage.close(usage_id, now=now - 60)
    lab.start("holder1")
    lab.start("holder2")
    for i in range(40):
        lab.queue.join(f"m{i:02d}", (), ONE, server_name="", profile="gpu-1", user_options={})
    rows = lab.queue.view()
    assert sorted(r["place"] for r in rows) == list(range(1, 41))
    assert [r["user"] for r in sorted(rows, key=lambda r: r["place"])][:3] == ["m39", "m38", "m37"]
    with pytest.raises(AlreadyQueued):
        lab.queue.join("m05", (), ONE, server_name="", profile="gpu-1", user_options={})

    lab.open()  # the hub restarts: the line is still there
    assert len(lab.queue.store.entries()) == 40
    rounds = []
    for holder in ("holder1", "holder2"):
        lab.stop(holder)
    while lab.queue.store.entries():
        reserved = {e.user for e in lab.queue.store.entries() if e.state == RESERVED}
        assert len(reserved) == 2  # both freed GPUs are offered at once, never more
        for user in sorted(reserved):
            lab.start(user)
            assert sum(len(lab.allocator.held_by(u)) for u in lab.servers) <= 2
        rounds.append(reserved)
        for user in sorted(reserved):
            lab.stop(user)
    assert rounds == [{f"m{i:02d}", f"m{i - 1:02d}"} for i in range(39, 0, -2)]  # fair share: fewest hours first


def test_a_full_group_pool_waits_and_is_never_exceeded(database):
    pool = QuotaPolicy(group_pools={"students": Limits(max_gpus=1)})
    lab = Lab(database("usage"), gpus=4, policy=pool)
    lab.start("s1", ("students",))
    with pytest.raises(MustWait) as refused:
        lab.start("s2", ("students",))
    assert refused.value.status == 429 and "Group students uses 1 of 1 GPUs" in str(refused.value)
    lab.queue.join("s2", ("students",), ONE, server_name="", profile="gpu-1", user_options={})
    lab.queue.join("s3", ("students",), ONE, server_name="", profile="gpu-1", user_options={})
    lab.queue.rebalance()
    assert lab.state() == {"s2": "waiting", "s3": "waiting"}  # 3 GPUs free, but the pool is full
    lab.stop("s1")
    assert lab.state() == {"s2": RESERVED, "s3": "waiting"}  # one reservation: the pool holds 1
    with pytest.raises(MustWait):  # another student cannot take the pool's place
        lab.start("s4", ("students",))
    lab.start("r1", ("residents",))  # others are not held up by the students' pool


def test_refusals_waiting_cannot_help_are_not_queued_with_the_same_messages(database):
    policy = QuotaPolicy(members=Limits(max_gpus=1, gpu_hours=5.0))
    lab = Lab(database("usage"), gpus=1, policy=policy)
    with pytest.raises(quotas.QuotaExceeded) as own:
        lab.queue.admit("alice", (), Wanted(2, "a100"))
    assert not isinstance(own.value, MustWait)
    assert str(own.value).startswith("You may use at most 1 GPU at a time and asked for 2:")
    with pytest.raises(quotas.QuotaExceeded) as own_join:
        lab.queue.join("alice", (), Wanted(2, "a100"), server_name="", profile="gpu-multi", user_options={})
    assert str(own_join.value) == str(own.value) and lab.queue.store.entries() == []
    usage_id = lab.usage.open("bob", "", (), "gpu-1", 1, "a100", 1, 2**30, now=time.time() - 6 * 3600)
    lab.usage.close(usage_id)
    with pytest.raises(quotas.QuotaExceeded, match="You have used 6.0 of your 5 GPU-hours"):
        lab.queue.join("bob", (), ONE, server_name="", profile="gpu-1", user_options={})
    with pytest.raises(quotas.QuotaExceeded, match="There is only 1 A100 in all and you asked for 2"):
        Lab(database("other"), gpus=1).queue.join("carol", (), Wanted(2, "a100"), server_name="", profile="x",
                                                  user_options={})
    with pytest.raises(quotas.QuotaExceeded, match="Only GPU launches wait in line"):
        lab.queue.join("dan", (), Wanted(0, None), server_name="", profile="cpu", user_options={})
    assert lab.queue.store.entries() == []


def test_the_forms_preview_says_why_and_the_place_a_member_would_get(database):
    lab = Lab(database("usage"))
    assert lab.queue.preview("alice", (), ONE) is None  # it can start now
    lab.start("alice")
    lab.queue.join("bob", (), ONE, server_name="", profile="gpu-1", user_options={})
    offer = lab.queue.preview("carol", (), ONE)
    assert offer["queueable"] and offer["place"] == 2 and offer["reason"].startswith("No A100 is free for you now")
    assert offer["estimated_wait"] > [r for r in lab.queue.view() if r["user"] == "bob"][0]["estimated_wait"]
    assert lab.queue.preview("carol", (), Wanted(2, "a100")) == {
        "queueable": False, "reason": "There is only 1 A100 in all and you asked for 2: choose another profile."}
    lab.policy = QuotaPolicy(queue=QueueSettings(enabled=False))
    off = lab.queue.preview("carol", (), ONE)
    assert not off["queueable"] and off["reason"].endswith("Try again when a server stops.")


def test_a_refusal_suggests_fewer_gpus_only_for_a_profile_that_offers_a_choice(database):
    lab = Lab(database("usage"), gpus=4, policy=QuotaPolicy(members=Limits(max_gpus=2)))
    with pytest.raises(quotas.QuotaExceeded) as fixed:
        lab.queue.admit("alice", (), Wanted(3, "a100"))
    with pytest.raises(quotas.QuotaExceeded) as choice:
        lab.queue.admit("alice", (), Wanted(3, "a100"), fewer_gpus=True)
    assert "choose fewer GPUs" not in str(fixed.value) and "a profile with fewer GPUs" in str(fixed.value)
    assert "choose fewer GPUs or a CPU profile" in str(choice.value)
