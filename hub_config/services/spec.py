"""What the hub needs to know of a hub-managed service, and the one place that turns
those specs into JupyterHub's ``services``, ``load_roles`` and ``custom_scopes``.

Each concern declares its service with a :class:`ServiceSpec` (``usage.service.spec``,
``datasets.service.spec``, ``announcements.service.spec``, the idle culler in the
configurer); :func:`hub_settings` is all the configurer does with them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from jupyterhub.utils import url_path_join


def access_scope(name: str) -> str:
    """The scope that lets a token reach the service ``name`` through the proxy."""
    return f"access:services!service={name}"


@dataclass(frozen=True)
class Role:
    """A JupyterHub role the service needs: scopes for some groups, users or services."""

    name: str
    scopes: tuple[str, ...]
    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        role = {"name": self.name, "scopes": list(self.scopes)}
        for key in ("groups", "users", "services"):
            if getattr(self, key) or (key in ("groups", "users") and not self.services):
                role[key] = list(getattr(self, key))
        return role


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str = ""
    module: str | None = None  # run as ``python -m module`` (None: ``command``, or not run by the hub)
    command: tuple[str, ...] = ()
    url: str | None = None  # where the proxy reaches it; None: no web endpoint (the culler)
    environment: dict = field(default_factory=dict)
    api_token: str | None = None  # None: JupyterHub makes one
    every_user: bool = False  # the hub's ``user`` role may reach it
    oauth_client_scopes: tuple[str, ...] = ()  # custom scopes a login token for it may carry
    custom_scopes: dict = field(default_factory=dict)  # scopes this service defines: {scope: description}
    roles: tuple[Role, ...] = ()
    server_url_env: str | None = None  # members' servers call it; its address reaches them in this variable

    def entry(self) -> dict:
        """The service as an entry of ``JupyterHub.services``."""
        entry: dict = {"name": self.name}
        if self.url:
            entry["url"] = self.url
        if self.api_token:
            entry["api_token"] = self.api_token
        command = [sys.executable, "-m", self.module] if self.module else list(self.command)
        if command:
            entry["command"] = command
        if self.environment:
            entry["environment"] = dict(self.environment)
        if self.url:
            entry["oauth_no_confirm"] = True
        if self.oauth_client_scopes:
            entry["oauth_client_allowed_scopes"] = list(self.oauth_client_scopes)
        if self.description:
            entry["info"] = {"description": self.description}
        return entry

    def url_for_servers(self, base_url: str) -> str:
        """The service's address as members' servers reach it (past the proxy: directly)."""
        return url_path_join(self.url, base_url, "services", self.name) + "/"


def hub_settings(specs: list[ServiceSpec]) -> dict:
    """``JupyterHub.services``, ``load_roles`` and (when any) ``custom_scopes`` for ``specs``."""
    user_scopes = ["self"] + [access_scope(s.name) for s in specs if s.every_user]
    roles = [{"name": "user", "scopes": user_scopes}] if len(user_scopes) > 1 else []
    custom_scopes: dict = {}
    for s in specs:
        roles.extend(r.as_dict() for r in s.roles)
        custom_scopes.update(s.custom_scopes)
    settings = {"services": [s.entry() for s in specs], "load_roles": roles}
    if custom_scopes:
        settings["custom_scopes"] = custom_scopes
    return settings
