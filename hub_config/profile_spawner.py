"""What every AI Studio spawner shares, whatever runs the server: the profile
picker, the launch decision on the hub, and spawn progress messages."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from tornado import web
from traitlets import Any, HasTraits, Unicode

from . import units
from .profiles import Launch, LaunchRejected, ProfileStore

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
)
_stores: dict[str, ProfileStore] = {}


def profile_store(directory: str, log=None) -> ProfileStore:
    """One store per profiles folder for the whole hub process."""
    if directory not in _stores:
        _stores[directory] = ProfileStore(directory, log)
    return _stores[directory]


class ProfileSpawnerMixin(HasTraits):
    """Mix into a Spawner: profiles decide the form and the launch."""

    profiles_dir = Unicode(
        "spawner_profiles",
        help="Folder of quota profile files (*.yaml); re-read when its files change.",
    ).tag(config=True)

    launch = Any(None, allow_none=True, help="The Launch decided for the current start.")

    # ---------------------------------------------------------------- profiles

    @property
    def profiles(self):
        return profile_store(self.profiles_dir, self.log).current()

    def user_groups(self) -> list[str]:
        return sorted(g.name for g in self.user.groups)

    # ---------------------------------------------------------------- the form

    def form_context(self) -> dict:
        """Extra template values; spawners add what they know (free GPUs, ...)."""
        return {}

    async def get_options_form(self):
        allowed = self.profiles.allowed_for(self.user.name, self.user_groups())
        if not allowed:
            return ""
        saved = (self.orm_spawner.user_options or {}).get("profile") if self.orm_spawner else None
        slugs = [a.profile.slug for a in allowed]
        return _TEMPLATES.get_template("profile_form.html").render(
            allowed=allowed,
            selected=saved if saved in slugs else slugs[0],
            format_duration=units.format_duration,
            **self.form_context(),
        )

    def options_from_form(self, formdata):
        """``{"profile": slug, "<option>": value}`` as KubeSpawner stores it."""
        slug = (formdata.get("profile") or [""])[0]
        options = {"profile": slug}
        prefix = f"profile-option-{slug}--"
        for key, values in formdata.items():
            if key.startswith(prefix) and values:
                options[key[len(prefix):]] = values[0]
        return options

    # ---------------------------------------------------------------- the decision

    def options_sent_with_request(self) -> bool:
        """Whether the request that started this spawn named its options.

        Without any (a plain POST to the API, a restart) JupyterHub reuses the
        options of the previous launch, which may name a profile that has since
        been removed or taken away: those fall back to the defaults.
        """
        handler = getattr(self, "handler", None)
        if handler is None or handler.request.method != "POST":
            return False
        if handler.request.body_arguments:
            return True
        try:
            body = json.loads(handler.request.body or b"{}")
        except ValueError:
            return False
        if not isinstance(body, dict):
            return False
        if "user_options" in body:
            return bool(body["user_options"])
        return bool(set(body) - {"name", "display_name"})

    def decide_launch(self) -> Launch:
        """Resolve ``user_options`` against the user's rights, or refuse with a 4xx."""
        saved = not self.options_sent_with_request()
        try:
            launch = self.profiles.resolve(self.user.name, self.user_groups(), self.user_options, saved=saved)
        except LaunchRejected as e:
            raise web.HTTPError(e.status, e.message, reason=e.message[:200]) from None
        chosen = {"profile": launch.profile.slug, **launch.options}
        if saved and self.user_options and chosen != self.user_options:
            self.log.info(
                "Saved options %s of %s no longer apply; launching %s", self.user_options, self._log_name, chosen
            )
        self.user_options = chosen
        self.launch = launch
        self.max_runtime = launch.max_runtime
        return launch

    # ---------------------------------------------------------------- run time

    max_runtime = Any(None, allow_none=True, help="Seconds the current server may run (from its profile).")

    def runtime_exceeded(self) -> bool:
        """Whether the running server has outlived its profile's max_runtime."""
        started = self.orm_spawner.started if self.orm_spawner is not None else None
        if not self.max_runtime or started is None:
            return False
        return (datetime.now(timezone.utc).replace(tzinfo=None) - started).total_seconds() > self.max_runtime

    # ---------------------------------------------------------------- progress

    def _progress_log(self) -> list:
        if not hasattr(self, "_aistudio_events"):
            self._aistudio_events = []
        return self._aistudio_events

    def report(self, progress: int, message: str) -> None:
        """Show ``message`` on the spawn page (and log it)."""
        self.log.info("%s: %s", self._log_name, message)
        self._progress_log().append({"progress": progress, "message": message})

    def reset_progress(self) -> None:
        self._aistudio_events = []
        self._aistudio_reports_done = False

    def finish_reports(self) -> None:
        """No more messages of ours for this start (a spawner's own may follow)."""
        self._aistudio_reports_done = True

    async def progress(self):
        sent = 0
        while True:
            events = self._progress_log()
            while sent < len(events):
                yield events[sent]
                sent += 1
            if not self._spawn_pending or getattr(self, "_aistudio_reports_done", False):
                break
            await asyncio.sleep(0.25)
