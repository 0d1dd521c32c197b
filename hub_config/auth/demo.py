"""Login for the embedded default: demo users and their groups from the studio config."""

import hmac

from jupyterhub.auth import Authenticator
from traitlets import Dict, Unicode, default


class DemoAuthenticator(Authenticator):
    """Password login for the demo users listed in the studio config.

    Groups come with the login (``manage_groups``), exactly as they will from an
    identity provider, so profile rights behave the same with either login.
    """

    users = Dict(
        help="Demo users by name: {name: {groups: [...], admin: bool, password: str}}.",
    ).tag(config=True)

    shared_password = Unicode(
        "",
        help="Password of demo users that have none of their own. Empty: such users cannot log in.",
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
            return None
        expected = user.get("password") or self.shared_password
        if not expected or not hmac.compare_digest(data.get("password", "").encode(), expected.encode()):
            return None
        admin = bool(user.get("admin")) or name in self.admin_users
        return {"name": name, "groups": list(user.get("groups", [])), "admin": admin}
