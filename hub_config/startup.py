"""Checks and preparations the hub makes before it starts; refuses a bad config."""

import logging
import os
import signal
import sys
from pathlib import Path

from traitlets.config import Config

from . import config as studio_config
from . import configurer, environments
from .auth.oidc import OIDCSetupError
from .profiles import InvalidProfiles, load_profiles

log = logging.getLogger("aistudio")

SHARED_MODE_WARNING = """
************************************************************************
*  AI Studio is running in DEMO MODE (single account).                 *
*  Every member's server runs as {account!r}; members can read and     *
*  change each other's files. Run as root for per-user accounts.       *
************************************************************************
"""


def fail(message: str):
    print(f"aistudio: cannot start: {message}", file=sys.stderr)
    sys.exit(1)


def others_can_run(path: str) -> bool:
    """Whether accounts other than ours can reach and run ``path``."""
    p = Path(path).resolve()
    for parent in reversed(p.parents):
        if not os.stat(parent).st_mode & 0o001:
            return False
    return p.exists() and bool(os.stat(p).st_mode & 0o005 == 0o005)


def check_environments(cfg: dict) -> None:
    """Servers run from the members' environments: refuse one that the users' accounts cannot
    run, and say which are not built (a start in one of those is refused with how to build it)."""
    system = studio_config.user_accounts(cfg) == "system"
    missing = []
    for env in environments.configured(cfg).values():
        if not environments.is_built(env):
            missing.append(env.name)
        elif system and not others_can_run(env.server_command):
            fail(
                f"{env.server_command} cannot be run by the users' system accounts (a folder on its path is private). "
                "Set environments.root to a readable place and run `aistudio env build`."
            )
    if missing:
        log.warning("Environments not built on this machine: %s; servers cannot start in them until "
                    "`aistudio env build %s` has run", ", ".join(missing), " ".join(missing))


def prepare() -> Config:
    """Load and check the studio config and profiles; return the traitlets config."""
    # A hub started in the background inherits SIGINT ignored and would hand that on to
    # the services it starts before it installs its own handlers: they could not be
    # interrupted, and each would hold the hub's shutdown up for its interrupt timeout.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cfg = studio_config.load_from_env()
        traits = configurer.traitlets_config(cfg, **configurer.gather(cfg))
    except studio_config.StudioConfigError as e:
        fail(f"invalid studio config:\n{e}")
    except OIDCSetupError as e:
        fail(f"OpenID Connect login: {e}")
    try:
        profiles = load_profiles(cfg["profiles_dir"], list(cfg["environments"]["available"]))
    except InvalidProfiles as e:
        fail(f"invalid profiles in {cfg['profiles_dir']}:\n{e}")
    local = cfg["mode"] == "local"
    if local:
        check_environments(cfg)
    data_dir = Path(cfg["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    logging.basicConfig(level=logging.INFO)
    log.info("Profiles: %s", ", ".join(p.slug for p in profiles.profiles))
    if local:  # say at start how servers' memory and CPU limits are enforced (cgroups, else RLIMIT_AS)
        from .spawners.local import limits_mechanism

        limits_mechanism(log)
    if local and studio_config.user_accounts(cfg) == "shared":
        import getpass

        print(SHARED_MODE_WARNING.format(account=getpass.getuser()), file=sys.stderr, flush=True)
    return Config(traits)
