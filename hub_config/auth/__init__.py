"""Login: demo users from the studio config (``demo``), or OpenID Connect (``oidc``);
either way the member's groups come with the login."""
