"""Login through OpenID Connect: OAuthenticator's GenericOAuthenticator, set up from
the studio config's ``auth.oidc``; the provider's groups become hub groups.

The pure part, :func:`check` and :func:`build_traitlets`, turns a config (plus the
discovered endpoints and the client secret) into traitlets config. The I/O part,
:func:`discover` and :func:`read_client_secret`, is called by :func:`traitlets`
when the hub starts; it raises :class:`OIDCSetupError` with a one-line reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import urllib.error
import urllib.request

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import List, Unicode

from .. import membership
from ..config import StudioConfigError
from ..config import db_url as studio_db_url
from ..notifications import AddressBook

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TIMEOUT = 10  # seconds
ENDPOINTS = ("authorize_url", "token_url", "userdata_url")
# where each endpoint is in a discovery document
DISCOVERY_KEYS = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "userdata_url": "userinfo_endpoint",
}


class OIDCSetupError(Exception):
    """The hub cannot set up OpenID Connect login (provider unreachable, secret missing)."""


# --------------------------------------------------------------------------- pure


def check(oidc: dict) -> None:
    """Refuse an ``auth.oidc`` section that cannot work, naming the key."""
    if not oidc.get("client_id") and not oidc.get("client_id_env"):
        raise StudioConfigError("auth.oidc.client_id: required when auth.type is oidc (or name a variable in client_id_env)")
    if not oidc.get("issuer"):
        missing = [key for key in ENDPOINTS if not oidc.get(key)]
        if missing:
            raise StudioConfigError(
                f"auth.oidc.issuer: required when auth.type is oidc, unless authorize_url, token_url and "
                f"userdata_url are all given (missing: {', '.join(missing)})"
            )
    if not oidc.get("client_secret_env") and not oidc.get("client_secret_file"):
        raise StudioConfigError(
            "auth.oidc.client_secret_env: name the variable holding the client secret, or set client_secret_file"
        )


def endpoints(oidc: dict, discovered: dict | None) -> dict:
    """The three endpoints: the config's explicit ones over the discovery document's."""
    discovered = discovered or {}
    result = {}
    for key in ENDPOINTS:
        url = oidc.get(key) or discovered.get(DISCOVERY_KEYS[key])
        if not url:
            source = f"{oidc['issuer'].rstrip('/')}{DISCOVERY_PATH}" if oidc.get("issuer") else "the config"
            raise OIDCSetupError(f"auth.oidc.{key}: not given, and {source} names no {DISCOVERY_KEYS[key]}")
        result[key] = url
    return result


def build_traitlets(config: dict, *, discovered: dict | None, client_id: str, client_secret: str) -> dict:
    """Traitlets config for :class:`StudioOIDCAuthenticator` (a GenericOAuthenticator).

    ``discovered`` is the provider's discovery document (None without ``issuer``);
    ``client_id`` and ``client_secret`` as read from the config, environment or file.
    """
    auth = config["auth"]
    oidc = auth["oidc"]
    auth_methods = (discovered or {}).get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    settings = {
        **endpoints(oidc, discovered),
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": list(oidc["scopes"]),
        "username_claim": oidc["username_claim"],
        "login_service": oidc["login_service"],
        "validate_server_cert": bool(oidc["tls_verify"]),
        # the secret goes in the token request's body unless the provider only takes HTTP Basic
        "basic_auth": "client_secret_post" not in auth_methods,
        # Groups: the userinfo response is kept in auth_state["oauth_user"] during the
        # login (no need to persist auth_state, so no JUPYTERHUB_CRYPT_KEY).
        "manage_groups": True,
        "auth_state_groups_key": f"{GenericOAuthenticator.user_auth_state_key}.{oidc['groups_claim']}",
        "admin_groups": set(oidc["admin_groups"]),
        "admin_users": set(auth["admin_users"]),
        "contacts_db_url": studio_db_url(config, "usage"),  # the e-mail claim, for notices by mail
        # the studio's own admissions (accepted residency applications) add their groups
        "membership_db_url": membership.db_url(config),
        "membership_groups": [config["announcements"]["residency"]["group"]],
    }
    if oidc["allowed_groups"]:
        settings["allowed_groups"] = set(oidc["allowed_groups"])
        settings["allow_all"] = False
    else:
        settings["allow_all"] = True  # whoever the provider authenticates
    if oidc.get("callback_url"):
        settings["oauth_callback_url"] = oidc["callback_url"]
    return {
        "JupyterHub": {"authenticator_class": "hub_config.auth.oidc.StudioOIDCAuthenticator"},
        "StudioOIDCAuthenticator": settings,
    }


# --------------------------------------------------------------------------- I/O


def discover(issuer: str, *, tls_verify: bool = True, timeout: float = DISCOVERY_TIMEOUT) -> dict:
    """The provider's discovery document, ``{issuer}/.well-known/openid-configuration``."""
    url = issuer.rstrip("/") + DISCOVERY_PATH
    context = None if tls_verify else ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            document = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        raise OIDCSetupError(f"discovery failed: {url} answered {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise OIDCSetupError(f"discovery failed: cannot reach {url}: {e.reason}") from None
    except (OSError, TimeoutError) as e:
        raise OIDCSetupError(f"discovery failed: cannot reach {url}: {e}") from None
    except ValueError:
        raise OIDCSetupError(f"discovery failed: {url} did not answer with JSON") from None
    if not isinstance(document, dict):
        raise OIDCSetupError(f"discovery failed: {url} did not answer with a JSON object")
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise OIDCSetupError(
            f"discovery failed: {url} names the issuer {document.get('issuer')!r}, "
            f"not {issuer!r} (auth.oidc.issuer must be exactly the provider's issuer)"
        )
    return document


def read_client_id(oidc: dict, environ=os.environ) -> str:
    if oidc.get("client_id_env"):
        value = environ.get(oidc["client_id_env"], "").strip()
        if value:
            return value
        if not oidc.get("client_id"):
            raise OIDCSetupError(f"the client id is missing: environment variable {oidc['client_id_env']} is not set "
                                 "(auth.oidc.client_id_env)")
    return oidc["client_id"]


def read_client_secret(oidc: dict, environ=os.environ) -> str:
    """The client secret, from ``client_secret_file`` when set, else ``client_secret_env``."""
    if oidc.get("client_secret_file"):
        path = oidc["client_secret_file"]
        try:
            with open(path, encoding="utf-8") as f:
                secret = f.read().strip()
        except OSError as e:
            raise OIDCSetupError(
                f"the client secret cannot be read from {path}: {e.strerror} (auth.oidc.client_secret_file)"
            ) from None
        if not secret:
            raise OIDCSetupError(f"the client secret file {path} is empty (auth.oidc.client_secret_file)")
        return secret
    name = oidc["client_secret_env"]
    secret = environ.get(name, "").strip()
    if not secret:
        raise OIDCSetupError(
            f"the client secret is missing: environment variable {name} is not set (auth.oidc.client_secret_env)"
        )
    return secret


def setup(config: dict, environ=os.environ) -> dict:
    """What the hub reads at start for OIDC login: the config checked, the client id and
    secret, the provider's discovery document (None without ``issuer``). Keyword arguments
    of :func:`build_traitlets`."""
    oidc = config["auth"]["oidc"]
    check(oidc)
    client_id = read_client_id(oidc, environ)
    client_secret = read_client_secret(oidc, environ)
    discovered = discover(oidc["issuer"], tls_verify=oidc["tls_verify"]) if oidc.get("issuer") else None
    return {"discovered": discovered, "client_id": client_id, "client_secret": client_secret}


# --------------------------------------------------------------------------- authenticator


class StudioOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose failed token requests end in a clear error page
    (OAuthenticator lets them surface as an unexplained 500), and which remembers each
    member's ``email`` claim at login, where notices by mail find it
    (``hub_config.notifications``), and which adds the groups of the studio's membership
    list to the provider's at each login (:func:`hub_config.membership.merge_groups`)."""

    membership_db_url = Unicode(
        "",
        help="SQLAlchemy URL of the database of the studio's membership list (the announcements database). "
        "Empty: groups come from the provider alone.",
    ).tag(config=True)

    membership_groups = List(
        Unicode(),
        help="The groups the studio's membership list may add to a login (e.g. the residents' group); "
        "any other group comes from the provider alone.",
    ).tag(config=True)

    async def get_user_groups(self, auth_state: dict):
        """The provider's groups, plus those the studio's membership list grants this member
        (matched by user name, or by the provider's verified e-mail)."""
        groups = await super().get_user_groups(auth_state)
        if not self.membership_db_url:
            return groups
        userinfo = (auth_state or {}).get(self.user_auth_state_key) or {}
        name = self.normalize_username(self.user_info_to_username(userinfo))
        email = userinfo.get("email") if userinfo.get("email_verified") is not False else None
        studio = await asyncio.to_thread(membership.members(self.membership_db_url).groups_of, name, email)
        return membership.merge_groups(groups, studio, self.membership_groups)

    contacts_db_url = Unicode(
        "",
        help="SQLAlchemy URL of the usage database, where the userinfo's email claim is recorded at "
        "each login (table member_contact) for notices by mail. Empty: addresses are not recorded.",
    ).tag(config=True)

    _address_book: AddressBook | None = None

    async def run_post_auth_hook(self, handler, auth_model):
        """After JupyterHub accepted the login (allowed, not blocked): remember the address.
        A failure to record it is logged; it never refuses the login."""
        auth_model = await super().run_post_auth_hook(handler, auth_model)
        if self.contacts_db_url and auth_model:
            await self._remember_email(auth_model)
        return auth_model

    async def _remember_email(self, auth_model: dict) -> None:
        userinfo = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        email = userinfo.get("email")
        if not email or userinfo.get("email_verified") is False:  # an unverified address gets no mail
            return
        if self._address_book is None:
            self._address_book = AddressBook(db_url=self.contacts_db_url)
        try:
            await asyncio.to_thread(self._address_book.remember, auth_model["name"], email)
        except Exception as e:
            self.log.warning("The e-mail address of %s was not recorded: %s", auth_model["name"], e)

    async def get_token_info(self, handler, params):
        try:
            return await super().get_token_info(handler, params)
        except HTTPClientError as e:
            reason = ""
            if e.response is not None and e.response.body:
                try:
                    body = json.loads(e.response.body)
                    reason = ": ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
                except (ValueError, AttributeError):
                    pass
            if e.code >= 500:
                raise web.HTTPError(502, f"Login failed: the identity provider's token endpoint failed ({e}).") from None
            raise web.HTTPError(
                403,
                f"Login failed: the identity provider refused the hub's token request ({reason or e}). "
                "Try logging in again; if this persists, ask the administrator to check the hub's "
                "client id and secret (auth.oidc).",
            ) from None
        except OSError as e:
            raise web.HTTPError(502, f"Login failed: the identity provider could not be reached ({e}).") from None
