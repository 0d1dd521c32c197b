"""Login through OpenID Connect against a real OpenID Provider (oidc-provider on node,
tests/oidc/provider.mjs): the authorization-code flow through its login and consent
pages, groups from the provider as hub groups, and the ways a login must fail."""

from __future__ import annotations

import copy
import html
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import pytest
import requests
import yaml
from traitlets.config import Config

from harness import REPO, Studio, copy_profiles, free_ports, hub_ports, write_config
from hub_config import config as studio_config
from hub_config import configurer
from hub_config.auth import oidc
from test_hub_spawn import offered_profiles

PROVIDER_DIR = REPO / "tests" / "oidc"
CLIENT_ID = "aistudio-tests"
CLIENT_SECRET = "provider-test-secret"
SECRET_ENV = "AISTUDIO_TEST_OIDC_SECRET"

# --------------------------------------------------------------------------- the provider


class Provider:
    def __init__(self, port: int, redirect_uris: list[str], log_path: Path):
        self.issuer = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        node = shutil.which("node")
        self.proc = subprocess.Popen(
            [node, str(PROVIDER_DIR / "provider.mjs")],
            env={**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENT_ID": CLIENT_ID,
                 "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_REDIRECT_URIS": ",".join(redirect_uris)},
            stdout=subprocess.PIPE, stderr=open(log_path, "wb"), text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise RuntimeError(f"the OpenID Provider did not start: {line}\n{log_path.read_text()}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """A running OpenID Provider, and the hub ports of the studios it knows as clients."""
    if not shutil.which("node") or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("node or tests/oidc/node_modules is missing (scripts/setup.sh --test installs it)")
    ports = free_ports(7)
    studios = [dict(zip(("port", "hub_port", "proxy_api_port"), ports[i:i + 3])) for i in (1, 4)]
    callbacks = [f"http://127.0.0.1:{hub['port']}/hub/oauth_callback" for hub in studios]
    p = Provider(ports[0], callbacks, tmp_path_factory.mktemp("provider") / "provider.log")
    p.studio_ports = studios
    yield p
    p.stop()


def oidc_section(provider: Provider, hub: dict, **overrides) -> dict:
    section = {
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret_env": SECRET_ENV,
        "callback_url": f"http://127.0.0.1:{hub['port']}/hub/oauth_callback",
        "admin_groups": ["hub-admins"],
        "allowed_groups": ["gpu-residents", "students"],
        "login_service": "Lab account",
    }
    section.update(overrides)
    return section


def make_studio(tmp_path_factory, hub: dict, oidc_config: dict, env: dict) -> Studio:
    directory = tmp_path_factory.mktemp("oidc-studio")
    os.chmod(directory, 0o755)
    config = write_config(directory, copy_profiles(directory), hub=hub, auth={"type": "oidc", "oidc": oidc_config})
    return Studio(directory, config, env=env)


@pytest.fixture(scope="module")
def studio(provider, tmp_path_factory):
    hub = provider.studio_ports[0]
    s = make_studio(tmp_path_factory, hub, oidc_section(provider, hub), {SECRET_ENV: CLIENT_SECRET})
    s.start()
    yield s
    s.stop()


# --------------------------------------------------------------------------- a browser's way


class FormParser(HTMLParser):
    """The first POST form of a page: its action and its inputs' values."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None and (attrs.get("method") or "").lower() == "post":
            self.action, self._in_form = attrs.get("action", ""), True
        elif tag == "input" and self._in_form and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False


def provider_login(studio: Studio, user: str, *, stop_at_callback=False):
    """Log in as ``user`` as a browser would: /hub/oauth_login, the provider's login and
    consent forms, back to the hub's callback. Returns (session, last response), or
    (session, callback URL) with ``stop_at_callback``."""
    s = requests.Session()
    callback = f"{studio.url}/hub/oauth_callback"
    r = s.get(f"{studio.url}/hub/oauth_login?next=/hub/home", allow_redirects=False, timeout=10)
    for _ in range(20):
        if r.is_redirect:
            location = urljoin(r.url, r.headers["Location"])
            if stop_at_callback and location.startswith(callback):
                return s, location
            r = s.get(location, allow_redirects=False, timeout=30)
            continue
        if r.url.startswith(studio.url):
            return s, r
        assert r.status_code == 200, f"provider page {r.url}: {r.status_code} {r.text[:500]}"
        form = FormParser()
        form.feed(r.text)
        assert form.action is not None, f"no form on the provider's page {r.url}: {r.text[:500]}"
        data = dict(form.fields)
        if "login" in data:
            data.update(login=user, password="any-password")
        r = s.post(urljoin(r.url, form.action), data=data, allow_redirects=False, timeout=10)
    raise AssertionError("the login did not come back to the hub")


def logged_in_as(studio: Studio, s: requests.Session) -> str | None:
    r = s.get(f"{studio.url}/hub/api/user", timeout=10)
    return r.json()["name"] if r.status_code == 200 else None


# --------------------------------------------------------------------------- the real flow


def test_login_page_offers_the_provider(studio):
    r = requests.get(f"{studio.url}/hub/login", timeout=10)
    assert r.status_code == 200
    assert "Sign in with Lab account" in r.text and "/hub/oauth_login" in r.text


def test_login_through_the_provider_gives_groups_and_profiles(studio):
    sessions = {}
    for user in ("ada", "alice", "bob"):
        s, r = provider_login(studio, user)
        assert r.status_code == 200 and urlparse(r.url).path == "/hub/home", (r.url, r.text[:500])
        assert logged_in_as(studio, s) == user
        sessions[user] = studio.use_session(user, s)

    # ada is in the provider's hub-admins group, one of auth.oidc.admin_groups
    ada = studio.api("GET", "/users/ada", user="ada").json()
    assert ada["admin"] is True and ada["groups"] == ["hub-admins"]
    alice = studio.api("GET", "/users/alice", user="ada").json()
    bob = studio.api("GET", "/users/bob", user="ada").json()
    assert (alice["groups"], alice["admin"]) == (["gpu-residents"], False)
    assert (bob["groups"], bob["admin"]) == (["students"], False)
    # the provider's groups exist on the hub (besides groups the studio config itself names, e.g. organisers)
    assert {"gpu-residents", "hub-admins", "students"} <= {g["name"] for g in studio.api("GET", "/groups", user="ada").json()}

    # the provider's groups decide the profiles offered
    assert offered_profiles(studio.form("alice")) == {"cpu-small", "gpu-1", "gpu-multi"}
    assert offered_profiles(studio.form("bob")) == {"cpu-small", "gpu-1"}


def test_user_outside_allowed_groups_is_refused(studio):
    s, r = provider_login(studio, "carol")  # the provider says: groups [visitors]
    assert r.status_code == 403 and "not currently authorized" in r.text
    assert logged_in_as(studio, s) is None


def test_tampered_state_is_refused(studio):
    s, callback = provider_login(studio, "alice", stop_at_callback=True)
    query = parse_qs(urlparse(callback).query)
    assert "code" in query and "state" in query
    query["state"] = [oidc_state({"state_id": "0" * 32})]
    r = s.get(f"{studio.url}/hub/oauth_callback?{urlencode(query, doseq=True)}", allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "OAuth state mismatch" in r.text
    assert logged_in_as(studio, s) is None
    assert requests.get(f"{studio.url}/hub/api/", timeout=10).status_code == 200


def oidc_state(state: dict) -> str:
    from oauthenticator.oauth2 import _serialize_state

    return _serialize_state(state)


def test_wrong_client_secret_fails_cleanly(provider, tmp_path_factory):
    hub = provider.studio_ports[1]
    s = make_studio(tmp_path_factory, hub, oidc_section(provider, hub), {SECRET_ENV: "not-the-secret"})
    s.start()
    try:
        session, r = provider_login(s, "alice")
        assert r.status_code == 403, r.text[:500]
        page = html.unescape(r.text)
        assert "identity provider refused the hub's token request (invalid_client" in page
        assert logged_in_as(s, session) is None
        assert s.proc.poll() is None
        assert requests.get(f"{s.url}/hub/api/", timeout=10).status_code == 200
    finally:
        s.stop()


@pytest.mark.parametrize(
    "section, env, reason",
    [
        ({}, {},
         f"cannot start: OpenID Connect login: the client secret is missing: environment variable {SECRET_ENV} is not set"),
        ({"issuer": "http://127.0.0.1:{dead}"}, {SECRET_ENV: CLIENT_SECRET},
         "cannot start: OpenID Connect login: discovery failed: cannot reach http://127.0.0.1:{dead}/.well-known/openid-configuration"),
        ({"client_id": None}, {SECRET_ENV: CLIENT_SECRET}, "auth.oidc.client_id: required when auth.type is oidc"),
    ],
)
def test_hub_refuses_to_start_with_a_reason(provider, tmp_path_factory, section, env, reason):
    dead = free_ports(1)[0]
    section = {k: v.format(dead=dead) if isinstance(v, str) else v for k, v in section.items()}
    hub = hub_ports()
    s = make_studio(tmp_path_factory, hub, oidc_section(provider, hub, **section), env)
    with pytest.raises(RuntimeError, match="exited with 1") as info:
        s.start(timeout=30)
    assert reason.format(dead=dead) in str(info.value)


# --------------------------------------------------------------------------- units

DISCOVERED = {
    "issuer": "https://id.lab.example/realms/lab",
    "authorization_endpoint": "https://id.lab.example/auth",
    "token_endpoint": "https://id.lab.example/token",
    "userinfo_endpoint": "https://id.lab.example/userinfo",
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
}


def oidc_config(**section) -> dict:
    cfg = studio_config.defaults()
    cfg["auth"]["type"] = "oidc"
    cfg["auth"]["oidc"].update({"issuer": DISCOVERED["issuer"], "client_id": "aistudio", **section})
    studio_config.validate(cfg)
    return cfg


def test_config_to_traitlets():
    cfg = oidc_config(admin_groups=["hub-admins"], login_service="Lab account", callback_url="https://lab.example/hub/oauth_callback")
    cfg["auth"]["admin_users"] = ["root-li"]
    traits = oidc.build_traitlets(cfg, discovered=DISCOVERED, client_id="aistudio", client_secret="s3cret")
    assert traits["JupyterHub"]["authenticator_class"] == "hub_config.auth.oidc.StudioOIDCAuthenticator"
    t = traits["StudioOIDCAuthenticator"]
    assert (t["authorize_url"], t["token_url"], t["userdata_url"]) == (
        "https://id.lab.example/auth", "https://id.lab.example/token", "https://id.lab.example/userinfo")
    assert (t["client_id"], t["client_secret"]) == ("aistudio", "s3cret")
    assert t["scope"] == ["openid", "profile", "email", "groups"]
    assert t["username_claim"] == "preferred_username"
    assert t["manage_groups"] is True and t["auth_state_groups_key"] == "oauth_user.groups"
    assert t["admin_groups"] == {"hub-admins"} and t["admin_users"] == {"root-li"}
    assert t["allow_all"] is True and "allowed_groups" not in t
    assert t["oauth_callback_url"] == "https://lab.example/hub/oauth_callback"
    assert t["login_service"] == "Lab account" and t["validate_server_cert"] is True
    assert t["basic_auth"] is False

    # the authenticator takes this config as it is, without JUPYTERHUB_CRYPT_KEY
    authenticator = oidc.StudioOIDCAuthenticator(config=Config(traits))
    assert authenticator.manage_groups and not authenticator.enable_auth_state
    assert authenticator.admin_groups == {"hub-admins"} and authenticator.allow_all


def test_allowed_groups_explicit_endpoints_and_nested_groups_claim():
    cfg = oidc_config(
        allowed_groups=["students"], groups_claim="realm_access.roles", token_url="https://other.example/token",
        tls_verify=False,
    )
    discovered = {**DISCOVERED, "token_endpoint_auth_methods_supported": ["client_secret_basic"]}
    t = oidc.build_traitlets(cfg, discovered=discovered, client_id="x", client_secret="y")["StudioOIDCAuthenticator"]
    assert t["allowed_groups"] == {"students"} and t["allow_all"] is False
    assert t["token_url"] == "https://other.example/token" and t["authorize_url"] == "https://id.lab.example/auth"
    assert t["auth_state_groups_key"] == "oauth_user.realm_access.roles"
    assert t["basic_auth"] is True and t["validate_server_cert"] is False
    assert "oauth_callback_url" not in t

    endpoints = {"authorize_url": "https://a.example/a", "token_url": "https://a.example/t", "userdata_url": "https://a.example/u"}
    cfg = oidc_config(issuer=None, **endpoints)
    t = oidc.build_traitlets(cfg, discovered=None, client_id="x", client_secret="y")["StudioOIDCAuthenticator"]
    assert {k: t[k] for k in endpoints} == endpoints


@pytest.mark.parametrize(
    "section, message",
    [
        ({"client_id": None}, "auth.oidc.client_id: required when auth.type is oidc"),
        ({"issuer": None, "token_url": "https://a.example/t"}, "auth.oidc.issuer: required when auth.type is oidc, unless"
                                                               " authorize_url, token_url and userdata_url are all given"
                                                               " (missing: authorize_url, userdata_url)"),
        ({"client_secret_env": None}, "auth.oidc.client_secret_env: name the variable"),
    ],
)
def test_oidc_config_that_cannot_work_names_the_key(section, message):
    with pytest.raises(studio_config.StudioConfigError) as info:
        configurer.auth_traitlets(oidc_config(**section))
    assert message in str(info.value)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"client_secret": "inline"}, "auth.oidc: Additional properties are not allowed ('client_secret' was unexpected)"),
        ({"tls_verify": "no"}, "auth.oidc.tls_verify: 'no' is not of type 'boolean'"),
        ({"issuer": "id.lab.example"}, "auth.oidc.issuer: 'id.lab.example' does not match"),
        ({"scopes": "openid"}, "auth.oidc.scopes: 'openid' is not of type 'array'"),
        ({"client_secret_file": "secret.txt"}, "auth.oidc.client_secret_file: 'secret.txt' does not match '^/'"),
    ],
)
def test_bad_oidc_section_names_file_and_key(tmp_path, section, message):
    path = tmp_path / "aistudio.yaml"
    path.write_text(yaml.safe_dump({"auth": {"type": "oidc", "oidc": {"client_id": "x", **section}}}))
    with pytest.raises(studio_config.StudioConfigError) as info:
        studio_config.load(path)
    assert f"{path}: {message}" in str(info.value)


def test_every_oidc_key_is_documented():
    schema = studio_config.json.loads(studio_config.SCHEMA_PATH.read_text())
    section = schema["properties"]["auth"]["properties"]["oidc"]
    assert section["additionalProperties"] is False
    assert set(section["properties"]) == set(studio_config.defaults()["auth"]["oidc"])
    for key, spec in section["properties"].items():
        assert spec.get("description"), key


def test_client_secret_from_environment_or_file(tmp_path):
    section = copy.deepcopy(studio_config.defaults()["auth"]["oidc"])
    assert oidc.read_client_secret(section, {"AISTUDIO_OIDC_CLIENT_SECRET": "from-env\n"}) == "from-env"
    with pytest.raises(oidc.OIDCSetupError, match="environment variable AISTUDIO_OIDC_CLIENT_SECRET is not set"):
        oidc.read_client_secret(section, {})
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    section["client_secret_file"] = str(secret)
    assert oidc.read_client_secret(section, {"AISTUDIO_OIDC_CLIENT_SECRET": "from-env"}) == "from-file"
    section["client_secret_file"] = str(tmp_path / "missing")
    with pytest.raises(oidc.OIDCSetupError, match="cannot be read from .*missing"):
        oidc.read_client_secret(section, {})
    section.update(client_id="from-config", client_id_env="LAB_CLIENT_ID")
    assert oidc.read_client_id(section, {"LAB_CLIENT_ID": "from-env"}) == "from-env"
    assert oidc.read_client_id(section, {}) == "from-config"


def test_discovery_of_the_real_provider_and_its_failures(provider):
    document = oidc.discover(provider.issuer)
    assert document["issuer"] == provider.issuer and document["token_endpoint"] == f"{provider.issuer}/token"
    assert "groups" in document["scopes_supported"]
    localhost = provider.issuer.replace("127.0.0.1", "localhost")
    with pytest.raises(oidc.OIDCSetupError, match="names the issuer 'http://127.0.0.1:.*not 'http://localhost"):
        oidc.discover(localhost)
    with pytest.raises(oidc.OIDCSetupError, match=r"discovery failed: .*/nothing/.well-known/openid-configuration answered 404"):
        oidc.discover(f"{provider.issuer}/nothing")


def test_readme_example_is_a_valid_oidc_config(tmp_path):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Logging in with OpenID Connect", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "aistudio.yaml"
    path.write_text(example)
    cfg = studio_config.load(path)
    oidc.check(cfg["auth"]["oidc"])
    t = oidc.build_traitlets(cfg, discovered=DISCOVERED, client_id="aistudio", client_secret="s")["StudioOIDCAuthenticator"]
    assert t["admin_groups"] == {"hub-admins"} and t["allow_all"] is True
