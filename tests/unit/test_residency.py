"""Residency applications without HTTP: the public form's validation and rate limit, the
review's state machine with compare-and-set, and the membership an acceptance grants
(read by the hub's authenticators), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from hub_config import membership
from hub_config.announcements import residency
from hub_config.announcements.content import BadInput
from hub_config.announcements.residency import RateLimiter, ResidencyStore
from hub_config.announcements.store import Conflict, NotFound, Store
from hub_config.auth.demo import DemoAuthenticator
from hub_config.auth.oidc import StudioOIDCAuthenticator

FORM = {"name": "Dr. Lin Wei", "organisation": "Heart Clinic Ltd", "email": "Lin.Wei@Example.org",
        "area": "healthcare", "reserves": "An ECG triage model\nvalidated on 40k records",
        "team": "3 cardiologists, 2 engineers", "wants": "GPU time and a partner clinic"}


@pytest.fixture
def res(database):
    store = Store(database("announcements"))
    yield ResidencyStore(store, group="gpu-residents", invitations=True, invitation_days=7)
    store.reader.dispose()
    store.writer.dispose()


# ------------------------------------------------------------------ validation and limits


@pytest.mark.parametrize("field, value, said", [
    ("name", "", "name: is required"),
    ("email", "not-an-address", "email:"),
    ("area", "astrology", "area: must be one of healthcare"),
    ("reserves", "x" * 5001, "reserves: is 5001 characters long; at most 5000"),
    ("team", "<b>us</b>", "team: must be plain text, without HTML tags"),
    ("organisation", "two\nlines", "organisation: must be plain text on one line"),
    ("wants", 42, "wants: must be text"),
    ("color", "blue", "unknown field(s): color"),
])
def test_bad_answers_name_their_field(field, value, said):
    with pytest.raises(BadInput) as e:
        residency.validate_application({**FORM, field: value})
    assert said in str(e.value)


def test_answers_are_kept_as_plain_text():
    checked = residency.validate_application({**FORM, "wants": "GPUs > 2 & data < 1 TB"})
    assert checked["email"] == "lin.wei@example.org" and checked["wants"] == "GPUs > 2 & data < 1 TB"
    assert residency.is_bot({**FORM, "website": "http://spam.example"}) and not residency.is_bot(FORM)


def test_the_rate_limit_counts_per_address_in_a_sliding_hour():
    limiter = RateLimiter(limit=2, window=3600)
    assert limiter.retry_after("10.0.0.1", now=0) == 0
    assert limiter.retry_after("10.0.0.1", now=10) == 0
    assert limiter.retry_after("10.0.0.1", now=20) == 3581  # until the first one is an hour old
    assert limiter.retry_after("10.0.0.2", now=20) == 0  # another address is not held back
    assert limiter.retry_after("10.0.0.1", now=3601) == 0


def test_the_client_is_the_last_hop_the_proxy_added():
    assert residency.client_address("6.6.6.6, 10.1.2.3", "127.0.0.1") == "10.1.2.3"  # the first hop is the client's word
    assert residency.client_address(None, "127.0.0.1") == "127.0.0.1"
    # behind an ingress controller: it appended the client, the proxy appended the ingress
    assert residency.client_address("6.6.6.6, 203.0.113.9, 10.0.0.7", "127.0.0.1", 1) == "203.0.113.9"
    assert residency.client_address("10.0.0.7", "127.0.0.1", 3) == "10.0.0.7"  # fewer hops than trusted


# ------------------------------------------------------------------ review and membership


def test_more_information_then_acceptance_grants_membership(res):
    app, token = res.submit(FORM)
    assert app["status"] == "submitted" and res.by_token(token)["name"] == "Dr. Lin Wei"
    with pytest.raises(BadInput, match="comment: say what more information"):
        res.review(app["id"], "olivia", {"status": "more_info"})
    res.review(app["id"], "olivia", {"comment": "internal note: strong team"})
    res.review(app["id"], "olivia", {"status": "more_info", "comment": "Which data do you need?", "if_status": "submitted"})
    seen = res.by_token(token)
    assert seen["status"] == "more_info"
    assert "internal note: strong team" not in str(seen["history"])  # comments alone are the reviewers' own
    assert "Which data do you need?" in str(seen["history"])
    res.answer(token, {"answer": "De-identified ECGs"})
    with pytest.raises(Conflict):
        res.answer(token, {"answer": "again"})  # only when asked

    # a stale decision (the reviewer saw more_info) changes nothing
    with pytest.raises(Conflict, match="reload"):
        res.review(app["id"], "olga", {"status": "rejected", "if_status": "more_info"})
    decision = res.review(app["id"], "olivia", {"status": "accepted", "comment": "Welcome", "if_status": "submitted"})
    assert decision.application["status"] == "accepted" and decision.invitation
    with pytest.raises(BadInput, match="cannot become rejected"):
        res.review(app["id"], "olivia", {"status": "rejected"})

    assert res.invitation(decision.invitation) == {"email": "lin.wei@example.org", "user": None}
    with pytest.raises(BadInput, match="user: alice is taken"):
        res.redeem(decision.invitation, {"user": "alice", "password": "long enough pw"}, reserved={"alice"})
    with pytest.raises(BadInput, match="password: at least 10"):
        res.redeem(decision.invitation, {"user": "linwei", "password": "short"}, reserved=set())
    assert res.redeem(decision.invitation, {"user": "linwei", "password": "a long password", "password2": "a long password"},
                      reserved=set()) == "linwei"
    with pytest.raises(NotFound):  # single use
        res.redeem(decision.invitation, {"user": "other", "password": "a long password"}, reserved=set())

    members = membership.MembershipList(res.store.url)
    assert members.login("linwei", "a long password") == ["gpu-residents"]
    assert members.login("linwei", "wrong password") is None
    assert members.groups_of("someone-else", "lin.wei@example.org") == ["gpu-residents"]
    members.close()


def test_two_reviewers_deciding_at_once_one_wins(res):
    app, _ = res.submit(FORM)

    def decide(status):
        try:
            return res.review(app["id"], "r", {"status": status, "comment": "x", "if_status": "submitted"}).application
        except Conflict:
            return None

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(decide, ["accepted", "rejected"]))
    assert sum(r is not None for r in results) == 1
    assert res.get(app["id"])["status"] in ("accepted", "rejected")
    assert len([h for h in res.get(app["id"])["history"] if h["author"] == "r"]) == 1


def test_an_unknown_token_opens_nothing(res):
    with pytest.raises(NotFound):
        res.by_token(membership.new_token())
    with pytest.raises(NotFound):
        res.invitation(membership.new_token())


# ------------------------------------------------------------------ the authenticators


def test_passwords_are_salted_scrypt_hashes():
    stored = membership.hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert stored != membership.hash_password("correct horse")
    assert membership.verify_password("correct horse", stored) and not membership.verify_password("wrong", stored)
    assert not membership.verify_password("x", "garbage")


def test_the_studio_list_only_adds_the_groups_it_may_grant():
    merged = membership.merge_groups({"staff"}, ["gpu-residents", "admins"], {"gpu-residents"})
    assert merged == {"staff", "gpu-residents"}  # admins is the provider's to give
    assert membership.merge_groups(set(), [], {"gpu-residents"}) == set()  # dropped at the provider: gone


def test_demo_login_accepts_an_admitted_member(res):
    app, _ = res.submit(FORM)
    invite = res.review(app["id"], "olivia", {"status": "accepted", "comment": "ok"}).invitation
    res.redeem(invite, {"user": "linwei", "password": "a long password"}, reserved=set())
    auth = DemoAuthenticator(users={"alice": {"groups": ["gpu-residents"]}}, shared_password="pw",
                             membership_db_url=res.store.url)
    assert asyncio.run(auth.authenticate(None, {"username": "linwei", "password": "a long password"})) == {
        "name": "linwei", "groups": ["gpu-residents"], "admin": False}
    assert asyncio.run(auth.authenticate(None, {"username": "linwei", "password": "nope"})) is None
    assert asyncio.run(auth.authenticate(None, {"username": "alice", "password": "pw"}))["groups"] == ["gpu-residents"]


def test_oidc_login_merges_the_studio_list_with_the_provider_groups(res):
    app, _ = res.submit(FORM)
    res.review(app["id"], "olivia", {"status": "accepted", "comment": "ok"})
    auth = StudioOIDCAuthenticator(
        manage_groups=True, auth_state_groups_key="oauth_user.groups", username_claim="preferred_username",
        membership_db_url=res.store.url, membership_groups=["gpu-residents"])
    state = {"oauth_user": {"preferred_username": "lwei", "email": "lin.wei@example.org", "groups": ["clinicians"]}}
    assert asyncio.run(auth.get_user_groups(state)) == {"clinicians", "gpu-residents"}
    unverified = {"oauth_user": {**state["oauth_user"], "email_verified": False}}
    assert asyncio.run(auth.get_user_groups(unverified)) == {"clinicians"}
    stranger = {"oauth_user": {"preferred_username": "x", "email": "x@example.org", "groups": ["clinicians"]}}
    assert asyncio.run(auth.get_user_groups(stranger)) == {"clinicians"}
