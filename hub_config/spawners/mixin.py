"""What every AI Studio spawner shares, whatever runs the server: the profile
picker, the launch decision on the hub (profile rights and quotas), usage
records, run-time limits and spawn progress messages. (Datasets: ``datasets.py``.)

Launch outcomes are told to :data:`listeners` (the hub's metrics, ``hub_config.metrics``,
adds itself there): ``refused`` (reason, profile), ``ready`` (profile, seconds from the
start request until the server answers) and, from ``datasets.py``, ``mounted`` (dataset)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from tornado import web
from traitlets import Any, Dict, HasTraits, Integer, Unicode, default

from .. import quotas, units
from ..profiles import ENVIRONMENT_OPTION, Launch, LaunchRejected, ProfileStore
from ..queue.hub import gpu_queue
from ..queue import core as queue_core
from ..queue.manager import ClusterCapacity, GPUQueue, MoreThanThereAre, MustWait, Wanted, more_than_there_are
from ..usage.store import UsageStore, usage_store

# what a member's server is told of its launch (for the member's own code and the lab extension)
PROFILE_ENV = "AISTUDIO_PROFILE"  # the profile's slug
MAX_RUNTIME_ENV = "AISTUDIO_MAX_RUNTIME"  # seconds the server may run
GPUS_ENV = "AISTUDIO_GPUS"  # how many GPUs it holds (local mode)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
)
_stores: dict[str, ProfileStore] = {}

# A refused launch's reason, by the HTTP status it is refused with (decide_launch; NoFreeGPUs
# in local.py).
REFUSALS = {400: "malformed", 403: "rights", 409: "no_free_gpu", 429: "quota"}

# Callables ``listener(event, **fields)`` told of launch outcomes in the hub process.
listeners: list = []


def tell(event: str, **fields) -> None:
    """Tell every listener of ``event``; a failing listener is logged and never fails a launch."""
    for listener in listeners:
        try:
            listener(event, **fields)
        except Exception:
            logging.getLogger("aistudio.spawners").exception("A listener of %s %s failed", event, fields)


def plain_refusal(error) -> None:
    """Let a refused launch read as its sentence: JupyterHub shows ``str(error)`` of a start's
    HTTPError on the spawn page and in the progress stream ("HTTP 409: error (...)", as it sets
    the reason to "error") unless the error carries ``jupyterhub_message``. 5xx errors keep
    JupyterHub's own wording."""
    if not isinstance(error, web.HTTPError) or not 400 <= error.status_code < 500 or not error.log_message:
        return
    if getattr(error, "jupyterhub_message", None) is None:
        error.jupyterhub_message = error.log_message % error.args if error.args else error.log_message


def badge_parts(res) -> dict:
    """The parts of a resources badge (``Resources.describe``), by the option that changes each."""
    return {
        "gpus": f"{res.gpus}× {(res.gpu_type or 'GPU').upper()}" if res.gpus else "",
        "cpu": f"{units.format_cores(res.cpu)} CPU",
        "memory": units.human_bytes(res.memory),
    }


def badge_text(parts: dict) -> str:
    return ", ".join(parts[k] for k in ("gpus", "cpu", "memory") if parts.get(k))


_WORDS = re.compile(r"\d+(?:\.\d+)?|[a-z][a-z0-9]*")


def repeats_title(title: str, badge: str) -> bool:
    """Whether a badge ("1× A100, 8 CPU, 64 GiB") only says what the title says: each of its
    parts' numbers and units appears in the title ("CPU · 2 cores, 8 GiB" says "2 CPU, 8 GiB")."""
    words = set(_WORDS.findall(title.lower()))
    return all(set(_WORDS.findall(part.lower())) <= words for part in badge.split(", "))


def profile_store(directory: str, log=None, environments=None) -> ProfileStore:
    """One store per profiles folder for the whole hub process (profiles may name ``environments``)."""
    if directory not in _stores:
        _stores[directory] = ProfileStore(directory, log, environments)
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

    environments = Dict(
        help="Members' Python environments by name: {description, image, path} (hub_config.environments)."
    ).tag(config=True)

    default_environment = Unicode("", help="The environment of a profile that names none.").tag(config=True)

    def environment_unavailable(self, name: str) -> str | None:
        """Why a server cannot start in environment ``name`` here (None: it can)."""
        return None

    def environment_of(self, launch: Launch) -> str:
        return launch.environment or self.default_environment

    def with_startable_environment(self, launch: Launch, asked) -> Launch:
        """Without the member's choice (``asked``), the profile's first environment that can
        start here rather than its first (on one machine the deep-learning one may not be
        built yet); a choice is kept, and refused at the start if it cannot run."""
        if asked or not launch.environment or not self.environment_unavailable(launch.environment):
            return launch
        other = next((e for e in launch.profile.environments if not self.environment_unavailable(e)), None)
        if other is None:
            return launch
        options = {**launch.options, ENVIRONMENT_OPTION: other} if ENVIRONMENT_OPTION in launch.options else launch.options
        return replace(launch, environment=other, options=options)

    @property
    def usage(self) -> UsageStore | None:
        return usage_store(self.usage_db_url) if self.usage_db_url else None

    queue_offer = Any(None, allow_none=True, help="The launch last refused because it must wait (the form offers the queue).")

    def gpu_capacity_source(self):
        """Where free GPUs are counted (local: the allocator; Kubernetes: the cluster)."""
        return None

    @property
    def gpu_queue(self) -> GPUQueue:
        """The hub's GPU queue (one per usage database), its capacity given by the first spawner."""
        return gpu_queue(self.usage_db_url, lambda: self.profiles.quotas, self.gpu_capacity_source)

    def _gpu_hours(self, policy):
        since = quotas.period_start(policy.period).timestamp()
        return lambda user=None, group=None: self.usage.period_gpu_hours(since, user=user, group=group)

    # ---------------------------------------------------------------- profiles

    @property
    def profiles(self):
        return profile_store(self.profiles_dir, self.log, tuple(self.environments) or None).current()

    def user_groups(self) -> list[str]:
        return sorted(g.name for g in self.user.groups)

    # ---------------------------------------------------------------- the form

    def form_context(self) -> dict:
        """Extra template values; spawners add what they know (shared accounts, ...)."""
        return {}

    async def get_options_form(self):
        groups = self.user_groups()
        allowed = self.profiles.allowed_for(self.user.name, groups)
        if not allowed:
            return ""
        saved = (self.orm_spawner.user_options or {}).get("profile") if self.orm_spawner else None
        policy = self.profiles.quotas
        quota_lines = []
        if self.usage is not None and not policy.is_empty:
            quota_lines = quotas.summary(policy, self.user.name, groups, self.usage.active(), self._gpu_hours(policy))
        capacity, active, entries = self._form_capacity()
        cards = self.profile_cards(allowed, capacity, active)
        startable = [c["profile"].slug for c in cards if not c["disabled"]]
        return _TEMPLATES.get_template("profile_form.html").render(
            cards=cards,
            quota_lines=quota_lines,
            gpu_capacity=self.gpu_capacity_lines(allowed, capacity, active, entries),
            queue_mine=self.gpu_queue.entry_of(self.user.name) if self.usage is not None else None,
            queue_api=f"{self.hub.base_url}api/queue" if self.hub is not None else "",
            queue_page=f"{self.hub.base_url}queue" if self.hub is not None else "",
            server_name=self.name,
            selected=saved if saved in startable else (startable[0] if startable else None),
            format_duration=units.format_duration,
            **self.form_context(),
        )

    def _form_capacity(self):
        """Where the form counts GPUs (None: nobody can tell), the running servers, the queue."""
        if self.usage is None:
            return self.gpu_capacity_source(), [], []
        queue = self.gpu_queue
        return queue.capacity, self.usage.active(), queue.store.entries()

    def _gpu_counts(self, capacity, gpu_type, active) -> tuple[int, int] | None:
        """Free and total GPUs of a type, or None when unknown (Kubernetes before its first read)."""
        if capacity is None:
            return None
        try:
            return capacity.free(gpu_type, active)
        except Exception:
            self.log.exception("Counting free %s GPUs for the form failed", gpu_type or "any")
            return None

    def gpu_capacity_lines(self, allowed, capacity, active, entries) -> list[dict]:
        """Per GPU type of the member's profiles: free and total GPUs, and how many of the free
        ones are reserved for members in the queue (local: the allocator; Kubernetes: the
        cluster, once read)."""
        types = []
        for item in allowed:
            res = item.profile.resources
            if (res.gpus or "gpus" in item.profile.options) and res.gpu_type not in types:
                types.append(res.gpu_type)
        lines = []
        for gpu_type in types:
            counts = self._gpu_counts(capacity, gpu_type, active)
            if counts is not None:
                lines.append({"type": (gpu_type or "GPU").upper(), "free": counts[0], "total": counts[1],
                              "reserved": queue_core.reserved_gpus(entries, gpu_type)})
        return lines

    def _launch_preview(self, groups, options):
        """The launch of ``options`` and the queue's preview of it (None: it could start now)."""
        try:
            launch = self.profiles.resolve(self.user.name, groups, options)
        except Exception:
            self.log.exception("The form could not resolve %s", options)
            return None, None
        if self.usage is None:
            return launch, None
        try:
            return launch, self.gpu_queue.preview(self.user.name, groups, launch.resources)
        except Exception:
            self.log.exception("The queue preview of %s failed", options)
            return launch, None

    def profile_cards(self, allowed, capacity=None, active=()) -> list[dict]:
        """What the form shows of each allowed profile: which of its option values can start
        (a ``gpus`` value needing more GPUs than exist of the type, or over the member's own
        limits, cannot), whether the profile can start at all (and why not), the queue's offer
        when it must wait, and its resources badge (with the part each option value shows)."""
        groups = self.user_groups()
        limits = self.profiles.quotas.member_limits(self.user.name, groups)
        where = "in the cluster" if isinstance(capacity, ClusterCapacity) else "on this machine"
        cards = []
        for item in allowed:
            p = item.profile
            res = p.resources
            gpu_values = item.choices.get("gpus")
            counts = self._gpu_counts(capacity, res.gpu_type, active) if res.gpus or gpu_values else None
            total = counts[1] if counts is not None else None
            caps = (limits.max_gpus, limits.max_gpus_by_type.get(res.gpu_type) if res.gpu_type else None)
            cap = min((c for c in caps if c is not None), default=None)  # the member's own GPU limit
            gpus_option = p.options.get("gpus")
            checks = {}  # gpus value (None: the profile has no gpus option) -> (launch, preview, note, reason)
            for value in (gpu_values or (None,)):
                options = {"profile": p.slug}
                if value is not None:
                    options["gpus"] = gpus_option.format(value)
                launch, preview = self._launch_preview(groups, options)
                gpus = value if value is not None else res.gpus
                note = reason = None
                if total is not None and gpus > total:
                    note = f"only {total} {where}"
                    reason = str(more_than_there_are(total, Wanted(gpus, res.gpu_type)))
                elif preview is not None and not preview["queueable"]:
                    note = f"over your limit of {cap}" if cap is not None and gpus > cap else "cannot start now"
                    reason = preview["reason"]
                checks[value] = (launch, preview, note, reason)
            possible = [v for v, check in checks.items() if check[3] is None]
            disabled = not possible
            default = item.default_value("gpus") if gpu_values else None
            chosen = default if default in possible or disabled else possible[0]
            launch, preview, _, reason = checks[chosen]
            res_now = launch.resources if launch is not None else res
            parts = badge_parts(res_now)
            # the title describes the defaults: a badge saying just that is hidden (the JS keeps it so)
            default_launch = checks[default][0]
            default_text = badge_text(badge_parts(default_launch.resources if default_launch is not None else res))
            title_text = default_text if repeats_title(p.display_name, default_text) else ""
            choices = []
            for name, values in item.choices.items():
                option = p.options[name]
                selected = chosen if name == "gpus" else item.default_value(name)
                rows = []
                for value in values:
                    note, why = (checks[value][2], checks[value][3]) if name == "gpus" else (None, None)
                    rows.append({
                        "value": option.format(value),
                        "label": option.label(value) + (f" ({note})" if note else ""),
                        "selected": value == selected,
                        "disabled": why is not None,
                        "reason": why,
                        "part": badge_parts(replace(res_now, **{name: value})).get(name, ""),
                    })
                choices.append({"name": name, "display_name": option.display_name, "values": rows})
            if len(p.environments) > 1:
                choices.append(self.environment_choice(p))
            cards.append({
                "profile": p,
                "disabled": disabled,
                "reason": reason if disabled else None,
                "offer": preview if not disabled and preview is not None and preview["queueable"] else None,
                "options": choices,
                "badge": {"parts": parts, "text": badge_text(parts), "title_text": title_text},
            })
        return cards

    def environment_choice(self, profile) -> dict:
        """The form's choice among a profile's environments (KubeSpawner's image choice); one that
        cannot start here is disabled with why."""
        rows = []
        for name in profile.environments:
            why = self.environment_unavailable(name)
            description = (self.environments.get(name) or {}).get("description")
            rows.append({"value": name, "label": f"{name} ({description})" if description else name,
                         "selected": False, "disabled": why is not None, "reason": why, "part": ""})
        # preselected: the first that can start here (else the first, disabled, saying why)
        next((r for r in rows if not r["disabled"]), rows[0])["selected"] = True
        return {"name": ENVIRONMENT_OPTION, "display_name": "Environment", "values": rows}

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
        asked = self.user_options.get("profile") if isinstance(self.user_options, dict) else None
        # the profile a refusal of this start is counted under: one of the set, never a name the request made up
        self._outcome_profile = asked if isinstance(asked, str) and asked in profiles.by_slug else None
        try:
            launch = profiles.resolve(self.user.name, groups, self.user_options, saved=saved)
        except LaunchRejected as e:
            raise web.HTTPError(e.status, e.message, reason=e.message[:200]) from None
        self._outcome_profile = launch.profile.slug
        launch = self.with_startable_environment(
            launch, self.user_options.get(ENVIRONMENT_OPTION) if isinstance(self.user_options, dict) else None)
        chosen = {"profile": launch.profile.slug, **launch.options}
        if saved and self.user_options and chosen != self.user_options:
            self.log.info(
                "Saved options %s of %s no longer apply; launching %s", self.user_options, self._log_name, chosen
            )
        quota_runtime = None
        if self.usage is not None:
            res = launch.resources
            try:
                quota_runtime = self.gpu_queue.admit(self.user.name, groups, res, server_name=self.name,
                                                     fewer_gpus="gpus" in launch.profile.options)
            except MustWait as e:
                self.queue_offer = {"profile": launch.profile.slug, "user_options": chosen, "reason": str(e)}
                raise web.HTTPError(e.status, f"{e} You can wait in line for it: join the GPU queue from the start page "
                                    "(or POST /hub/api/queue).",
                                    reason="Must wait") from None
            except MoreThanThereAre as e:
                raise web.HTTPError(409, str(e), reason="Not so many GPUs") from None
            except quotas.QuotaExceeded as e:
                raise web.HTTPError(429, str(e), reason="Quota exceeded") from None
            self.usage_id = self.usage.open(
                self.user.name, self.name, groups, launch.profile.slug, res.gpus, res.gpu_type, res.cpu, res.memory
            )
        self.queue_offer = None
        self.user_options = chosen
        self.launch = launch
        self.max_runtime = quotas.effective_runtime(launch.max_runtime, quota_runtime)
        if self.usage_id and self.max_runtime:
            self.gpu_queue.runtimes[self.usage_id] = self.max_runtime
        return launch

    def end_usage(self, *, discard=False) -> None:
        """Close the server's usage record (or drop it: the server never started)."""
        if self.usage_id and self.usage is not None:
            (self.usage.discard if discard else self.usage.close)(self.usage_id)
            self.gpu_queue.runtimes.pop(self.usage_id, None)
            self.usage_id = 0
            self.gpus_released()
        self.usage_id = 0

    def gpus_released(self) -> None:
        """A server's GPUs are back: the queue may offer them (local mode frees devices first)."""
        try:
            self.gpu_queue.rebalance()
        except Exception:
            self.log.exception("The GPU queue could not offer freed GPUs")

    # ---------------------------------------------------------------- outcome

    _outcome_profile = None

    @property
    def _spawn_future(self):
        """JupyterHub's future of the start in progress: it sets it when a start is requested
        and it resolves once the server answers through the proxy, or fails."""
        return self.__dict__.get("_aistudio_spawn_future")

    @_spawn_future.setter
    def _spawn_future(self, future):
        self.__dict__["_aistudio_spawn_future"] = future
        if future is not None and not future.done():
            # first of the future's callbacks, before JupyterHub's handlers read the error
            future.add_done_callback(lambda f: None if f.cancelled() else plain_refusal(f.exception()))
            requested = time.monotonic()
            future.add_done_callback(lambda f: self._spawn_finished(f, requested))

    def _spawn_finished(self, future, requested: float) -> None:
        """Tell the listeners how the start ended: ready (and how long it took) or refused."""
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            tell("ready", profile=self._outcome_profile, seconds=time.monotonic() - requested)
        elif isinstance(error, web.HTTPError) and error.status_code in REFUSALS:
            tell("refused", reason=REFUSALS[error.status_code], profile=self._outcome_profile)

    # ---------------------------------------------------------------- run time

    max_runtime = Any(None, allow_none=True, help="Seconds the current server may run (from its profile).")
    runtime_warned = Any(help="Warning points (seconds before the stop) already sent for this server.")
    idle_warned = Any(False, help="Whether the member was warned of a GPU-idle stop since the GPUs were last busy.")
    gpu_samples = Any(help="(time, utilisation %) samples of this server's GPUs, oldest first.")
    stop_reason = Any(None, allow_none=True, help="Why the hub stopped this server, when it did.")

    @default("runtime_warned")
    def _runtime_warned_default(self):
        return set()

    @default("gpu_samples")
    def _gpu_samples_default(self):
        return []

    def profile_name(self) -> str:
        return self.launch.profile.display_name if self.launch is not None else (
            (self.user_options or {}).get("profile") or "-")

    def gpus_label(self) -> str:
        res = self.launch.resources if self.launch is not None else None
        return f"{res.gpus}× {(res.gpu_type or 'GPU').upper()}" if res is not None and res.gpus else "no GPU"

    def held_gpus(self) -> int:
        """GPUs this server holds (spawners say more: which devices, which pod)."""
        return self.launch.resources.gpus if self.launch is not None else 0

    def gpu_target(self) -> dict:
        """How the GPU samplers find this server's GPUs (``lifecycle.samplers.Target`` fields)."""
        return {}

    def extension(self):
        """Whether this server may be extended now, and by how much (``lifecycle.runtime``)."""
        from ..lifecycle import runtime

        started = self.started_at
        left = runtime.time_left(started.replace(tzinfo=timezone.utc).timestamp() if started else None,
                                 self.max_runtime, time.time())
        policy = self.profiles.quotas
        groups = self.user_groups()
        limits = policy.member_limits(self.user.name, groups)
        done = len(self.usage.extensions(self.usage_id)) if self.usage is not None and self.usage_id else 0
        hours = self._gpu_hours(policy) if self.usage is not None else (lambda **_: 0.0)
        budgets = {g: (hours(group=g), pool.gpu_hours) for g, pool in policy.pools_of(groups).items()
                   if pool.gpu_hours is not None}
        return runtime.may_extend(limits, done, self.held_gpus(), left, hours(user=self.user.name), budgets)

    def extend(self) -> int:
        """Extend the running server's run-time limit within the policy (raises a 409 saying why
        not); the extension is recorded. Returns the seconds added."""
        extension = self.extension()
        if extension.refusal:
            raise web.HTTPError(409, extension.refusal)
        self.max_runtime = int(self.max_runtime) + extension.seconds
        if self.usage is not None and self.usage_id:
            self.usage.record_extension(self.usage_id, self.user.name, extension.seconds, self.max_runtime)
            self.gpu_queue.runtimes[self.usage_id] = self.max_runtime
        # warnings already sent come due again at the new limit
        started = self.started_at.replace(tzinfo=timezone.utc).timestamp()
        left = started + self.max_runtime - time.time()
        self.runtime_warned = {p for p in (self.runtime_warned or set()) if p >= left}
        self.idle_warned = False
        self.log.info("%s extended by %ss to %ss", self._log_name, extension.seconds, self.max_runtime)
        return extension.seconds

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
        self.runtime_warned = set()
        self.gpu_samples = []
        self.idle_warned = False

    def get_state(self):
        state = super().get_state()
        if self.max_runtime:
            state["max_runtime"] = self.max_runtime
        if self.runtime_warned:
            state["runtime_warned"] = sorted(self.runtime_warned)
        if self.usage_id:
            state["usage_id"] = self.usage_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.max_runtime = state.get("max_runtime")
        self.usage_id = state.get("usage_id", 0)
        self.runtime_warned = set(state.get("runtime_warned", []))
        if self.usage_id and self.max_runtime and self.usage_db_url:
            self.gpu_queue.runtimes[self.usage_id] = self.max_runtime

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
