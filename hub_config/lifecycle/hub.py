"""The running servers' life in the hub process: a loop that, every few seconds, warns
members before a run-time stop (e-mail; the hub pages and JupyterLab read the same state),
samples GPU utilisation (into the usage records) and stops a server whose GPUs stayed
idle past its profile's ``gpu_idle`` policy, warned first. Stops go through the hub's own
REST API with the token of the ``server-lifecycle`` service (``servers`` scope).

The decisions are ``runtime``'s; this module gathers the hub's spawners and applies them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timezone
from urllib.parse import quote

from .. import units
from . import runtime
from .samplers import idle_since

log = logging.getLogger("aistudio.lifecycle")

SERVICE = "server-lifecycle"  # the token-only service the hub's own stops are made with
IDLE_WARNING = 600  # seconds before a GPU-idle stop that the member is warned (at most half of `after`)


def started_ts(spawner) -> float | None:
    started = spawner.orm_spawner.started if spawner.orm_spawner is not None else None
    return started.replace(tzinfo=timezone.utc).timestamp() if started else None


def server_path(user: str, server: str) -> str:
    if server:
        return f"users/{quote(user, safe='')}/servers/{quote(server, safe='')}"
    return f"users/{quote(user, safe='')}/server"


def is_studio_spawner(spawner) -> bool:
    """A spawner of the studio's (``spawners.mixin.ProfileSpawnerMixin``), known by what it offers."""
    return callable(getattr(spawner, "extension", None)) and hasattr(spawner, "runtime_warned")


def studio_spawners(app):
    """(user, spawner) of every running studio server of the hub."""
    for user in list(app.users.values()):
        for spawner in list(user.spawners.values()):
            if is_studio_spawner(spawner) and spawner.active and spawner.ready:
                yield user, spawner


class Lifecycle:
    """The loop and what it tells; one per hub process (:func:`install`)."""

    def __init__(self, *, warn_before, every: float, sampler=None, sample_every: float = 60.0,
                 notifier=None, hub_api: str = "", token: str = "", public_url: str = ""):
        self.warn_before = tuple(sorted(warn_before, reverse=True))
        self.every = every
        self.sampler = sampler
        self.sample_every = sample_every
        self.notifier = notifier
        self.hub_api = hub_api.rstrip("/")
        self.token = token
        self.public_url = public_url
        self._sampled = float("-inf")
        self._task = None

    # ------------------------------------------------------------ the loop

    def start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._task is None:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        from jupyterhub.app import JupyterHub

        while True:
            try:
                if JupyterHub.initialized():
                    await self.look(JupyterHub.instance())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Looking at the running servers failed; trying again")
            await asyncio.sleep(self.every)

    async def look(self, app, now: float | None = None) -> None:
        now = time.time() if now is None else now
        servers = list(studio_spawners(app))
        for user, spawner in servers:
            await self.warn_runtime(app, user, spawner, now)
        if self.sampler is not None and now - self._sampled >= self.sample_every:
            self._sampled = now
            await self.sample_gpus(app, [(u, s) for u, s in servers if s.held_gpus()], now)

    # ------------------------------------------------------------ run-time warnings

    async def warn_runtime(self, app, user, spawner, now: float) -> None:
        left = runtime.time_left(started_ts(spawner), spawner.max_runtime, now)
        due = runtime.warnings_due(left, self.warn_before, spawner.runtime_warned)
        if not due:
            return
        spawner.runtime_warned.update(due)
        save_state(app.db, spawner)
        when = time.strftime("%H:%M UTC", time.gmtime(now + left))
        name = spawner.name or "default"
        log.info("%s's server %s stops at %s (run-time limit); warning sent", user.name, name, when)
        extend = ""
        if spawner.extension().seconds:
            extend = f"You may extend it by {units.format_duration(spawner.extension().seconds)} from JupyterLab or the hub's home page.\n"
        await self.mail(user.name, f"AI Studio: your server {name} stops at {when}",
                        f"Hello {user.name},\n\nYour server {name} ({spawner.profile_name()}) reaches its run-time "
                        f"limit at {when}, in {units.format_duration(int(max(left, 0)))}. Save your work.\n{extend}\n"
                        f"{self.public_url}\n\n-- AI Studio\n")

    # ------------------------------------------------------------ GPU utilisation

    async def sample_gpus(self, app, servers, now: float) -> None:
        from .samplers import Target

        targets = {}
        for user, spawner in servers:
            key = f"{user.name}/{spawner.name}"
            targets[key] = (user, spawner, Target(key=key, **spawner.gpu_target()))
        if not targets:
            return
        values = await self.sampler.sample([t for _, _, t in targets.values()])
        for key, (user, spawner, _) in targets.items():
            value = values.get(key)
            spawner.gpu_samples.append((now, value))
            del spawner.gpu_samples[:-720]  # the last 720 samples are plenty for any policy
            if value is not None and spawner.usage_id and spawner.usage is not None:
                spawner.usage.add_gpu_sample(spawner.usage_id, value)
            await self.check_idle(app, user, spawner, now)

    async def check_idle(self, app, user, spawner, now: float) -> None:
        policy = spawner.launch.profile.gpu_idle if spawner.launch is not None else None
        if not policy:
            return
        threshold, after = policy
        since = idle_since(spawner.gpu_samples, threshold, now)
        idle = 0.0 if since is None else now - since
        name = spawner.name or "default"
        if idle >= after:
            log.warning("Stopping %s's server %s: its GPUs stayed below %g%% for %s", user.name, name, threshold,
                        units.format_duration(int(idle)))
            spawner.stop_reason = f"its GPUs stayed below {threshold:g}% for {units.format_duration(int(idle))}"
            await self.mail(user.name, f"AI Studio: your server {name} was stopped (GPUs idle)",
                            f"Hello {user.name},\n\nYour server {name} was stopped because {spawner.stop_reason} "
                            f"(profile {spawner.profile_name()}), so that others can use them.\n\n-- AI Studio\n")
            await self.stop(user.name, spawner.name)
        elif idle >= after - min(IDLE_WARNING, after / 2) and not spawner.idle_warned:
            spawner.idle_warned = True
            left = units.format_duration(int(max(after - idle, 0)))
            log.info("%s's server %s: GPUs idle for %s; warned", user.name, name, units.format_duration(int(idle)))
            await self.mail(user.name, f"AI Studio: your server {name} stops in {left} unless its GPUs are used",
                            f"Hello {user.name},\n\nThe GPUs of your server {name} have been below {threshold:g}% "
                            f"for {units.format_duration(int(idle))}. It will be stopped in {left} unless they are "
                            f"used again.\n\n{self.public_url}\n\n-- AI Studio\n")
        elif idle == 0:
            spawner.idle_warned = False

    # ------------------------------------------------------------ telling and stopping

    async def mail(self, user: str, subject: str, body: str) -> None:
        if self.notifier is not None:
            await self.notifier.notify(user, subject, body)

    async def stop(self, user: str, server: str) -> None:
        from tornado.httpclient import AsyncHTTPClient

        response = await AsyncHTTPClient().fetch(
            f"{self.hub_api}/{server_path(user, server)}", method="DELETE", raise_error=False,
            headers={"Authorization": f"token {self.token}"},
        )
        if response.code >= 400:
            log.warning("Stopping %s's server %r failed: %s %s", user, server, response.code, response.body[:300])


def save_state(db, spawner) -> None:
    """Keep the spawner's state (warnings sent, an extended limit) in the hub's database
    ``db``, across a hub restart."""
    if spawner.orm_spawner is not None:
        spawner.orm_spawner.state = spawner.get_state()
        db.commit()


class ServerNotices:
    """``studio_servers`` in the hub's templates: a member's running servers with profile,
    GPUs and time left (the home page), and those near their stop (every page)."""

    def __init__(self, warn_before):
        self.warn_before = max(warn_before, default=0)

    def for_user(self, user) -> list[dict]:
        now = time.time()
        rows = []
        for name, spawner in sorted(user.spawners.items()):
            if not is_studio_spawner(spawner) or not spawner.active:
                continue
            left = runtime.time_left(started_ts(spawner), spawner.max_runtime, now)
            extension = spawner.extension() if spawner.ready else runtime.Extension(refusal="starting")
            rows.append({
                "name": name, "profile": spawner.profile_name(), "gpus": spawner.gpus_label(),
                "ready": spawner.ready, "left": left,
                "left_text": "no limit" if left is None else units.format_duration(int(max(left, 0))),
                "ends": None if left is None else time.strftime("%H:%M UTC", time.gmtime(now + left)),
                "warning": left is not None and left <= self.warn_before,
                "extend_by": units.format_duration(extension.seconds) if extension.seconds else "",
                "extend_refusal": extension.refusal or "",
                "extend_url": f"api/{server_path(user.name, name)}/extend",
            })
        return rows

    def warnings_for(self, user) -> list[dict]:
        return [r for r in self.for_user(user) if r["warning"]]


_installed: list[Lifecycle] = []


def install(lifecycle: Lifecycle) -> Lifecycle:
    """In the hub process, at start (``configurer.gather``): the one loop."""
    if not _installed:
        _installed.append(lifecycle)
        lifecycle.start()
    return _installed[0]


def installed() -> Lifecycle | None:
    return _installed[0] if _installed else None


__all__ = ["Lifecycle", "ServerNotices", "install", "installed"]
