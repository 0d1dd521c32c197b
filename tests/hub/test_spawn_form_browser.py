"""The spawn form in Debian's Chromium, on a real hub with two A100s and profiles like the
shipped ones: only choices that can start are enabled (3 or 4 GPUs of a multi-GPU profile
are not, nor a profile over the member's own limit, each saying why), only the chosen
profile's options are active, the resources badge follows the chosen memory and GPUs, the
free GPUs count the queue's reservations, and a refused start reads as a plain sentence that
fits the profile. Screenshots of the form go to each test's tmp_path."""

import os
import time
from functools import partial

import pytest
import harness
from harness import CHROMIUM, PASSWORD, Studio, browser_login, write_config, write_profiles

wait_for = partial(harness.wait_for, timeout=30, what="it")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/setup.sh --test installs it)"
    ),
]

PROFILES = """\
profiles:
  - slug: cpu-small
    display_name: "CPU · 2 cores, 8 GiB"
    default: true
    resources: {cpu: 2, memory: 8Gi}
    access: {everyone: true}
    options:
      memory: {min: 4Gi, max: 16Gi, step: 4Gi}
  - slug: gpu-1
    display_name: "1× A100, 8 CPU, 64 GiB"
    resources: {cpu: 8, memory: 64Gi, gpus: 1, gpu_type: a100}
    access: {groups: [gpu-residents, students, limited]}
  - slug: gpu-flex
    display_name: "Flexible A100 (1–2 GPUs)"
    resources: {cpu: 4, memory: 32Gi, gpus: 1, gpu_type: a100}
    access: {groups: [gpu-residents]}
    options:
      gpus: {min: 1, max: 2}
  - slug: gpu-multi
    display_name: "Multi-GPU A100 (2–4 GPUs)"
    resources: {cpu: 16, memory: 128Gi, gpus: 2, gpu_type: a100}
    access: {groups: [gpu-residents, limited]}
    options:
      gpus: {min: 2, max: 4}
      memory: {min: 64Gi, max: 256Gi, step: 64Gi}
  - slug: gpu-node
    display_name: "Whole node"
    resources: {cpu: 32, memory: 256Gi, gpus: 8, gpu_type: a100}
    access: {groups: [gpu-residents]}
quotas:
  groups:
    students:
      member: {max_gpus: 1, max_servers: 2}
    limited:
      member: {max_gpus: 1, max_servers: 2}
    gpu-residents:
      member: {max_gpus: 8, max_servers: 2}
  queue: {claim_timeout: 5m}
"""
USERS = {"alice": ["gpu-residents"], "ahmed": ["gpu-residents"], "bob": ["students"], "lena": ["limited"]}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("spawn-form")
    users = {u: {"groups": groups} for u, groups in USERS.items()} | {"admin": {"admin": True}}
    studio = Studio(directory, write_config(
        directory, write_profiles(directory, PROFILES),
        auth={"demo": {"password": PASSWORD, "users": users}},
        local={"user_accounts": "shared"},
        gpus={"discovery": "inventory", "inventory": [{"index": 0, "type": "a100"}, {"index": 1, "type": "a100"}]},
    ))
    studio.start()
    yield studio
    studio.stop()


def shot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0, path
    return path


def open_form(page, studio, user, server=""):
    page.set_default_timeout(20_000)
    browser_login(page, studio.url, user)
    page.wait_for_url(lambda url: "/hub/login" not in url)
    page.goto(f"{studio.url}/hub/spawn/{user}/{server}" if server else f"{studio.url}/hub/spawn")
    page.get_by_test_id("profile-form").wait_for()


def option_states(page, select):
    """(value, label, disabled) of each option of a select."""
    return page.locator(select).evaluate(
        "s => Array.from(s.options).map(o => [o.value, o.textContent.trim(), o.disabled])")


def words(text):
    return " ".join(text.split())


def stop_all(studio, *users):
    for entry in studio.api("GET", "/queue").json()["entries"]:
        studio.api("DELETE", f"/queue/{entry['id']}")
    for user in users:
        for name in list(studio.api("GET", f"/users/{user}").json()["servers"]):
            studio.api("DELETE", f"/users/{user}/servers/{name}" if name else f"/users/{user}/server")
        deadline = time.monotonic() + 60
        while studio.api("GET", f"/users/{user}").json()["servers"] and time.monotonic() < deadline:
            time.sleep(0.3)


def test_gpu_counts_beyond_the_machine_are_disabled_and_say_why(studio, page, tmp_path):
    open_form(page, studio, "alice")
    assert option_states(page, "#profile-option-gpu-multi--gpus") == [
        ["2", "2", False],
        ["3", "3 (only 2 on this machine)", True],
        ["4", "4 (only 2 on this machine)", True],
    ]
    # a profile that needs more GPUs than exist at all cannot be chosen, and says why
    assert page.locator("#profile-item-gpu-node").is_disabled()
    assert page.get_by_test_id("cannot-start-gpu-node").inner_text() == (
        "There are only 2 A100s in all and you asked for 8: choose another profile.")
    # the others can start now: no reason, no queue offer
    for slug in ("cpu-small", "gpu-1", "gpu-flex", "gpu-multi"):
        assert page.locator(f"#profile-item-{slug}").is_enabled()
        assert page.get_by_test_id(f"cannot-start-{slug}").count() == 0
        assert page.get_by_test_id(f"queue-offer-{slug}").count() == 0
    assert words(page.get_by_test_id("gpu-capacity").inner_text()) == "GPUs free now: A100 2 of 2"
    shot(page, tmp_path, "alice-form")


def test_only_the_chosen_profiles_options_are_active(studio, page, tmp_path):
    open_form(page, studio, "alice")
    assert page.locator("#profile-item-cpu-small").is_checked()  # the default profile
    assert page.locator("#profile-option-cpu-small--memory").is_enabled()
    for select in ("#profile-option-gpu-multi--gpus", "#profile-option-gpu-multi--memory", "#profile-option-gpu-flex--gpus"):
        assert page.locator(select).is_disabled(), select

    page.check("#profile-item-gpu-multi")
    assert page.locator("#profile-option-gpu-multi--gpus").is_enabled()
    assert page.locator("#profile-option-gpu-multi--memory").is_enabled()
    assert page.locator("#profile-option-cpu-small--memory").is_disabled()
    assert page.locator("#profile-option-gpu-flex--gpus").is_disabled()
    shot(page, tmp_path, "gpu-multi-chosen")

    # a click on another card's (inactive) option chooses that card
    page.locator("#profile-option-gpu-flex--gpus").click(force=True)
    assert page.locator("#profile-item-gpu-flex").is_checked()
    assert page.locator("#profile-option-gpu-flex--gpus").is_enabled()
    assert page.locator("#profile-option-gpu-multi--gpus").is_disabled()
    # what the form sends: the chosen profile and its options only
    sent = page.locator("#spawn_form").evaluate("f => Array.from(new FormData(f).keys()).filter(k => k !== '_xsrf')")
    assert sent == ["profile", "profile-option-gpu-flex--gpus"], sent


def test_the_badge_follows_the_chosen_memory_and_gpus(studio, page, tmp_path):
    open_form(page, studio, "alice")
    gpu1, cpu, flex, multi = (page.get_by_test_id(f"resources-{s}") for s in ("gpu-1", "cpu-small", "gpu-flex", "gpu-multi"))
    # badges that only repeat the title are not shown
    assert gpu1.is_hidden() and cpu.is_hidden()
    assert multi.inner_text() == "2× A100, 16 CPU, 128 GiB"

    page.check("#profile-item-gpu-multi")
    page.select_option("#profile-option-gpu-multi--memory", "192Gi")
    assert multi.inner_text() == "2× A100, 16 CPU, 192 GiB"

    page.check("#profile-item-gpu-flex")
    assert flex.inner_text() == "1× A100, 4 CPU, 32 GiB"
    page.select_option("#profile-option-gpu-flex--gpus", "2")
    assert flex.inner_text() == "2× A100, 4 CPU, 32 GiB"

    page.check("#profile-item-cpu-small")
    page.select_option("#profile-option-cpu-small--memory", "16Gi")
    assert cpu.is_visible() and cpu.inner_text() == "2 CPU, 16 GiB"  # no longer what the title says
    shot(page, tmp_path, "badges-follow")
    page.select_option("#profile-option-cpu-small--memory", "8Gi")
    assert cpu.is_hidden()


def test_a_profile_over_the_members_own_limit_is_disabled_with_the_reason(studio, page, tmp_path):
    open_form(page, studio, "lena")
    assert page.locator("#profile-item-gpu-multi").is_disabled()
    reason = page.get_by_test_id("cannot-start-gpu-multi").inner_text()
    assert reason == "You may use at most 1 GPU at a time and asked for 2: choose a profile with fewer GPUs or a CPU profile."
    assert [label for _, label, _ in option_states(page, "#profile-option-gpu-multi--gpus")] == [
        "2 (over your limit of 1)", "3 (only 2 on this machine)", "4 (only 2 on this machine)"]
    assert page.locator("#profile-option-gpu-multi--gpus").is_disabled()
    assert page.locator("#profile-option-gpu-multi--memory").is_disabled()
    assert page.locator("#profile-item-gpu-1").is_enabled() and page.locator("#profile-item-cpu-small").is_checked()
    # clicking the card does not choose it
    page.get_by_test_id("profile-card-gpu-multi").click()
    assert not page.locator("#profile-item-gpu-multi").is_checked()
    shot(page, tmp_path, "over-own-limit")


def test_a_refused_start_reads_as_a_sentence_that_fits_the_fixed_profile(studio, page, tmp_path):
    try:
        open_form(page, studio, "bob")
        page.check("#profile-item-gpu-1")
        # meanwhile bob starts his one GPU elsewhere: this start is over his limit
        r = studio.api("POST", "/users/bob/servers/elsewhere", user="bob", json={"user_options": {"profile": "gpu-1"}})
        assert r.status_code in (201, 202), r.text
        with page.expect_response(lambda response: response.request.method == "POST") as posted:
            page.click("#spawn_form [type=submit]")
        assert posted.value.status == 429
        error = page.locator(".spawn-error-msg")
        text = error.inner_text().strip()
        assert text == ("You may use at most 1 GPU at a time, already use 1 and asked for 1 more: "
                        "stop a GPU server or choose a CPU profile."), text
        assert "HTTP" not in text and "error (" not in text and "fewer GPUs" not in text
        # the form shown again says the same on the card, and gpu-1 cannot be chosen now
        assert page.locator("#profile-item-gpu-1").is_disabled()
        assert page.get_by_test_id("cannot-start-gpu-1").inner_text() == text
        shot(page, tmp_path, "refused-over-limit")
    finally:
        stop_all(studio, "bob")


def test_waiting_refusal_is_plain_and_free_gpus_count_reservations(studio, page, tmp_path):
    try:
        assert studio.spawn("alice", {"profile": "gpu-multi", "gpus": "2"}).status_code in (201, 202)
        open_form(page, studio, "bob")
        assert words(page.get_by_test_id("gpu-capacity").inner_text()) == "GPUs free now: A100 0 of 2"
        offer = page.get_by_test_id("queue-offer-gpu-1")
        assert "Join the queue" in offer.inner_text() and page.locator("#profile-item-gpu-1").is_enabled()
        page.check("#profile-item-gpu-1")
        with page.expect_response(lambda response: response.request.method == "POST") as posted:
            page.click("#spawn_form [type=submit]")
        assert posted.value.status == 409
        text = page.locator(".spawn-error-msg").inner_text().strip()
        assert text.startswith("No A100 is free for you now: you asked for 1, 0 of 2 are free"), text
        assert "HTTP" not in text and "error (" not in text and not text.startswith("Error")
        shot(page, tmp_path, "refused-must-wait")

        joined = studio.session("bob").post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "gpu-1"}})
        assert joined.status_code == 201, joined.text
        studio.stop_server("alice")
        wait_for(lambda: [e for e in studio.api("GET", "/queue").json()["entries"] if e["state"] == "reserved"],
                 what="bob's reservation")
        page.goto(f"{studio.url}/hub/logout")
        open_form(page, studio, "ahmed")
        assert words(page.get_by_test_id("gpu-capacity").inner_text()) == (
            "GPUs free now: A100 2 of 2, 1 reserved for the queue")
        shot(page, tmp_path, "reserved-for-the-queue")
    finally:
        stop_all(studio, "alice", "bob")


def test_refusal_wording_fits_the_profile_and_reads_as_a_sentence():
    """Without a hub: "choose fewer GPUs" only where the profile has a gpus option (the flag),
    and a refused start's HTTPError shows its sentence (JupyterHub's str() does not)."""
    from tornado import web

    from hub_config.profiles import Resources
    from hub_config.quotas import ActiveServer, Limits, QuotaExceeded, QuotaPolicy, admit
    from hub_config.spawners.mixin import plain_refusal, repeats_title

    policy = QuotaPolicy(members=Limits(max_gpus=2))
    running = [ActiveServer("bob", (), 2, "a100")]

    def refusal(gpus, **flag):
        with pytest.raises(QuotaExceeded) as info:
            admit(policy, "bob", [], Resources(cpu=1, memory=2**30, gpus=gpus, gpu_type="a100"), running,
                  lambda **_: 0.0, **flag)
        return str(info.value)

    assert refusal(1) == ("You may use at most 2 GPUs at a time, already use 2 and asked for 1 more: "
                          "stop a GPU server or choose a CPU profile.")
    assert refusal(2, fewer_gpus=True).endswith("stop a GPU server, or choose fewer GPUs or a CPU profile.")
    assert "choose fewer GPUs" not in refusal(2)

    error = web.HTTPError(429, "You may use at most 2 GPUs.")
    error.reason = "error"  # as JupyterHub sets it on a failed start
    plain_refusal(error)
    assert error.jupyterhub_message == "You may use at most 2 GPUs."
    server_error = web.HTTPError(500, "boom")
    plain_refusal(server_error)
    assert not hasattr(server_error, "jupyterhub_message")

    assert repeats_title("1× A100, 8 CPU, 64 GiB", "1× A100, 8 CPU, 64 GiB")
    assert repeats_title("CPU · 2 cores, 8 GiB", "2 CPU, 8 GiB")
    assert not repeats_title("CPU · 2 cores, 8 GiB", "2 CPU, 16 GiB")
    assert not repeats_title("Multi-GPU A100 (2–4 GPUs)", "2× A100, 16 CPU, 128 GiB")
