"""Login for the embedded default: demo users and their groups from the studio config; and what
the studio's login page shows, in either login mode (the name, the logo, the demo users)."""

import asyncio
import hmac
from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Dict, Unicode, default

from ..membership import members


class DemoAuthenticator(Authenticator):
    """Password login for the demo users listed in the studio config.

    Groups come with the login (``manage_groups``), exactly as they will from an
    identity provider, so profile rights behave the same with either login.

    Besides them, whoever the studio admitted (``hub_config.membership``: an accepted
    residency application whose invitation set a password) logs in with that password
    and gets the groups the admission granted.
    """

    users = Dict(
        help="Demo users by name: {name: {groups: [...], admin: bool, password: str}}.",
    ).tag(config=True)

    shared_password = Unicode(
        "",
        help="Password of demo users that have none of their own. Empty: such users cannot log in.",
    ).tag(config=True)

    membership_db_url = Unicode(
        "",
        help="SQLAlchemy URL of the database of the studio's membership list (the announcements "
        "database); empty: only the listed demo users log in.",
    ).tag(config=True)

    @default("manage_groups")
    def _manage_groups_default(self):
        return True

    @default("allow_all")
    def _allow_all_default(self):
        # authenticate() only ever accepts listed demo users
        return True

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        user = self.users.get(name)
        if user is None:
            return await self._studio_member(name, data.get("password", ""))
        expected = user.get("password") or self.shared_password
        if not expected or not hmac.compare_digest(data.get("password", "").encode(), expected.encode()):
            return None
        admin = bool(user.get("admin")) or name in self.admin_users
        return {"name": name, "groups": list(user.get("groups", [])), "admin": admin}

    async def _studio_member(self, name: str, password: str) -> dict | None:
        if not self.membership_db_url or not name:
            return None
        groups = await asyncio.to_thread(members(self.membership_db_url).login, name, password)  # scrypt: off the event loop
        if groups is None:
            return None
        return {"name": name, "groups": groups, "admin": name in self.admin_users}


# --------------------------------------------------------------------------- the login page

STUDIO_NAME = "AI Studio"
LOGO = Path(__file__).parent / "static" / "logo.svg"  # JupyterHub.logo_file: /hub/logo on every page
TEMPLATES = Path(__file__).parent / "templates"  # login.html: the studio's login page


def roles_of(name: str, user: dict, config: dict) -> list[str]:
    """What a demo user is besides their groups: ``hub admin``, ``organiser`` (announcements),
    ``residency reviewer``, ``support staff``."""
    roles = []
    if user.get("admin") or name in config["auth"]["admin_users"]:
        roles.append("hub admin")
    ann = config["announcements"]
    if ann["enabled"] and (set(user.get("groups", [])) & set(ann["organiser_groups"]) or name in ann["organiser_users"]):
        roles.append("organiser")
    res = ann.get("residency") or {}
    if ann["enabled"] and res.get("enabled") and (
            set(user.get("groups", [])) & set(res["reviewer_groups"]) or name in res["reviewer_users"]):
        roles.append("residency reviewer")
    sup = ann.get("support") or {}
    if ann["enabled"] and (set(user.get("groups", [])) & set(sup.get("staff_groups", []))
                           or name in sup.get("staff_users", [])):
        roles.append("support staff")
    return roles


def login_page(config: dict) -> dict:
    """What the login page shows besides the form (``aistudio`` in the hub's templates): the
    studio's name and, in demo mode, the demo users with their groups, roles and what
    each is for (``auth.demo.users.NAME.description``). Passwords are never shown."""
    page = {"name": STUDIO_NAME, "demo": config["auth"]["type"] == "demo", "demo_users": []}
    if page["demo"]:
        page["demo_users"] = [
            {"name": name, "groups": list(user.get("groups", [])), "roles": roles_of(name, user, config),
             "description": user.get("description", "")}
            for name, user in config["auth"]["demo"]["users"].items()
        ]
    return page
