"""What every AI Studio spawner shares, whatever runs the server: the profile
picker, the launch decision on the hub (profile rights and quotas), usage
records, run-time limits and spawn progress messages."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from tornado import web
from traitlets import Any, HasTraits, Integer, List, Unicode

from . import quotas, units
from .datasets import DatasetStore, MountSpec, dataset_store
from .profiles import Launch, LaunchRejected, ProfileStore
from .usage import UsageStore, usage_store

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

    usage_db_url = Unicode(
        "",
        help="SQLAlchemy URL of the usage records (quotas and reports); empty: no accounting, no quotas.",
    ).tag(config=True)

    usage_id = Integer(0, help="Usage record of the current server (0: none).")

    @property
    def usage(self) -> UsageStore | None:
        return usage_store(self.usage_db_url) if self.usage_db_url else None

    def _gpu_hours(self, policy):
        since = quotas.period_start(policy.period).timestamp()
        return lambda user=None, group=None: self.usage.period_gpu_hours(since, user=user, group=group)

    # ---------------------------------------------------------------- datasets

    datasets_db_url = Unicode(
        "", help="SQLAlchemy URL of the datasets registry; empty: no datasets are mounted."
    ).tag(config=True)

    datasets_mount_root = Unicode("/datasets", help="Where servers find granted datasets: <root>/<name>.").tag(
        config=True
    )

    datasets_group_prefix = Unicode(
        "aistudio-ds-", help="Local mode: prefix of the system group of each dataset."
    ).tag(config=True)

    datasets_service_url = Unicode(
        "", help="The datasets catalogue as servers reach it (AISTUDIO_DATASETS_URL, for the Datasets panel)."
    ).tag(config=True)

    announcements_service_url = Unicode(
        "", help="The announcements service as servers reach it (AISTUDIO_ANNOUNCEMENTS_URL, for JupyterLab's notices)."
    ).tag(config=True)

    mounted_datasets = List(help="Datasets the current (or last) server got, by name.")

    @property
    def datasets(self) -> DatasetStore | None:
        return dataset_store(self.datasets_db_url) if self.datasets_db_url else None

    def decide_datasets(self) -> tuple[list[MountSpec], list[str]]:
        """The datasets granted to the user now, directly or through a group, unexpired (decided
        here on the hub from the registry), and those the last server had that are gone since."""
        if self.datasets is None:
            return [], []
        mounts = self.datasets.mounts_for(self.user.name, self.user_groups())
        gone = sorted(set(self.mounted_datasets) - {m.name for m in mounts})
        return mounts, gone

    def record_mounts(self, mounts: list[MountSpec], gone: list[str], where: str, skipped=()) -> None:
        """Audit and report the mounts step; remember what this server got."""
        names = [m.name for m in mounts if m.name not in set(skipped)]
        if self.datasets is not None:
            for m in mounts:
                if m.name in names:
                    self.datasets.audit("mount", self.user.name, m.name, server=self.name, expires_at=m.expires_at)
            for name in gone:
                self.datasets.audit("unmount", self.user.name, name, server=self.name,
                                    reason="access revoked or expired")
        if names:
            self.report(50, f"Mounting datasets read-only at {where}: {', '.join(names)}")
        elif self.datasets is not None:
            self.report(50, "Mounting datasets: none granted to you")
        if gone:
            self.report(50, f"No longer available to you (access revoked or expired): {', '.join(gone)}")
        for name in skipped:
            self.report(50, f"Dataset {name} cannot be mounted here; ask its steward")
        self.mounted_datasets = names

    def get_env(self):
        env = super().get_env()
        if self.datasets_db_url:
            env["AISTUDIO_DATASETS_DIR"] = getattr(self, "datasets_dir", None) or self.datasets_mount_root
            if self.datasets_service_url:
                env["AISTUDIO_DATASETS_URL"] = self.datasets_service_url
        if self.announcements_service_url:
            env["AISTUDIO_ANNOUNCEMENTS_URL"] = self.announcements_service_url
        return env

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
        policy = self.profiles.quotas
        quota_lines = []
        if self.usage is not None and not policy.is_empty:
            quota_lines = quotas.summary(
                policy, self.user.name, self.user_groups(), self.usage.active(), self._gpu_hours(policy)
            )
        return _TEMPLATES.get_template("profile_form.html").render(
            allowed=allowed,
            quota_lines=quota_lines,
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
        """Resolve ``user_options`` against the user's rights and quotas, or refuse with a 4xx.

        Admission and its usage record happen without yielding to the event loop,
        so concurrent launches are decided one after another and never overrun a cap.
        """
        saved = not self.options_sent_with_request()
        profiles = self.profiles
        groups = self.user_groups()
        try:
            launch = profiles.resolve(self.user.name, groups, self.user_options, saved=saved)
        except LaunchRejected as e:
            raise web.HTTPError(e.status, e.message, reason=e.message[:200]) from None
        chosen = {"profile": launch.profile.slug, **launch.options}
        if saved and self.user_options and chosen != self.user_options:
            self.log.info(
                "Saved options %s of %s no longer apply; launching %s", self.user_options, self._log_name, chosen
            )
        quota_runtime = None
        if self.usage is not None:
            try:
                quota_runtime = quotas.admit(
                    profiles.quotas, self.user.name, groups, launch.resources, self.usage.active(),
                    self._gpu_hours(profiles.quotas),
                )
            except quotas.QuotaExceeded as e:
                raise web.HTTPError(429, str(e), reason="Quota exceeded") from None
            res = launch.resources
            self.usage_id = self.usage.open(
                self.user.name, self.name, groups, launch.profile.slug, res.gpus, res.gpu_type, res.cpu, res.memory
            )
        self.user_options = chosen
        self.launch = launch
        self.max_runtime = quotas.effective_runtime(launch.max_runtime, quota_runtime)
        return launch

    def end_usage(self, *, discard=False) -> None:
        """Close the server's usage record (or drop it: the server never started)."""
        if self.usage_id and self.usage is not None:
            (self.usage.discard if discard else self.usage.close)(self.usage_id)
        self.usage_id = 0

    # ---------------------------------------------------------------- run time

    max_runtime = Any(None, allow_none=True, help="Seconds the current server may run (from its profile).")

    @property
    def started_at(self):
        """When the hub started this server (naive UTC, as JupyterHub stores it)."""
        return self.orm_spawner.started if self.orm_spawner is not None else None

    def runtime_exceeded(self) -> bool:
        """Whether the running server has outlived its max_runtime."""
        started = self.started_at
        if not self.max_runtime or started is None:
            return False
        return (datetime.now(timezone.utc).replace(tzinfo=None) - started).total_seconds() > self.max_runtime

    # ---------------------------------------------------------------- state

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:
            self.end_usage()

    def clear_state(self):
        """The server is gone, or a new start begins: its record closes, its limit goes."""
        super().clear_state()
        self.end_usage()
        self.max_runtime = None

    def get_state(self):
        state = super().get_state()
        if self.max_runtime:
            state["max_runtime"] = self.max_runtime
        if self.usage_id:
            state["usage_id"] = self.usage_id
        if self.mounted_datasets:
            state["datasets"] = list(self.mounted_datasets)
        return state

    def load_state(self, state):
        super().load_state(state)
        self.max_runtime = state.get("max_runtime")
        self.usage_id = state.get("usage_id", 0)
        self.mounted_datasets = list(state.get("datasets", []))

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
