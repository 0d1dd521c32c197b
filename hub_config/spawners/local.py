"""The embedded default's spawner: each server a real JupyterLab process on this machine."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import resource
import signal
import sys
import time

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import Enum, List, Unicode

from ..datasets.mounts import write_as
from ..environments import SERVER_COMMAND, EnvironmentNotBuilt
from ..gpus import GPUAllocator, NoFreeGPUs, cuda_env, discover
from . import limits
from .datasets import DatasetsSpawnerMixin
from .mixin import GPUS_ENV, MAX_RUNTIME_ENV, PROFILE_ENV, ProfileSpawnerMixin

_allocators: dict[tuple, GPUAllocator] = {}


def gpu_allocator(discovery: str, inventory: list, log) -> GPUAllocator:
    """One allocator per GPU setting for the whole hub process."""
    key = (discovery, tuple(tuple(sorted(g.items())) for g in inventory))
    if key not in _allocators:
        gpus, source = discover(discovery, inventory)
        log.info(
            "GPUs (%s): %s", source, ", ".join(f"{g.index}:{g.type}" for g in gpus) or "none"
        )
        _allocators[key] = GPUAllocator(gpus, source)
    return _allocators[key]


_mechanism: list = []

RLIMIT_WARNING = """
************************************************************************
*  AI Studio cannot enforce servers' memory and CPU limits here:       *
*  {reason:<66}  *
*  Only an address-space limit (RLIMIT_AS) guards memory; one          *
*  member's kernel can still take the machine's memory and CPUs.       *
************************************************************************
"""


def limits_mechanism(log) -> limits.Mechanism:
    """How this hub enforces servers' limits, found (and told) once per hub process."""
    if not _mechanism:
        mechanism = limits.detect_here()
        if mechanism.kind == "rlimit":
            log.warning("%s", mechanism.describe())
            print(RLIMIT_WARNING.format(reason=mechanism.reason[:66]), file=sys.stderr, flush=True)
        else:
            log.info("%s", mechanism.describe())
        _mechanism.append(mechanism)
    return _mechanism[0]


def system_username(prefix: str, name: str) -> str:
    """A valid Linux account name for a hub user: ``jupyter-alice``; long or
    unusual names are shortened and made unique with a hash (at most 32 chars)."""
    safe = re.sub(r"[^a-z0-9_-]", "-", name.lower())
    full = prefix + safe
    if full == prefix + name and len(full) <= 32:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{full[: 32 - 7]}-{digest}"


class StudioLocalSpawner(DatasetsSpawnerMixin, ProfileSpawnerMixin, LocalProcessSpawner):
    """Starts JupyterLab as a local process sized by the chosen quota profile.

    As root, each hub user runs under a system account of its own
    (``system_user_prefix`` + name, created on first start, home mode 0700).
    Otherwise every server runs as the hub's account (``shared`` demo mode).
    GPUs are given exclusively through ``CUDA_VISIBLE_DEVICES``; the profile's
    CPU and memory are exported as ``CPU_LIMIT`` and ``MEM_LIMIT``.
    """

    user_accounts = Enum(
        ["system", "shared"],
        "shared",
        help="system: a system account per hub user (needs root); shared: the hub's own account (demo only).",
    ).tag(config=True)

    system_user_prefix = Unicode("jupyter-", help="Prefix of per-user system account names.").tag(config=True)

    shared_home_root = Unicode(
        "/tmp/aistudio-homes", help="Parent of the users' home folders in shared mode."
    ).tag(config=True)

    studio_id = Unicode(
        "", help="Tells this studio's cgroups from another's on the same machine (from its data folder)."
    ).tag(config=True)

    gpu_discovery = Enum(
        ["auto", "nvml", "inventory", "none"], "auto", help="Where GPUs are found (see gpus.discover)."
    ).tag(config=True)

    gpu_inventory = List(help="GPUs of this machine when NVML is not used: [{index, type, uuid?}].").tag(
        config=True
    )

    @property
    def gpus(self) -> GPUAllocator:
        return gpu_allocator(self.gpu_discovery, self.gpu_inventory, self.log)

    @property
    def owner_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    @property
    def account(self) -> str:
        return system_username(self.system_user_prefix, self.user.name)

    @property
    def home_dir(self) -> str:
        if self.user_accounts == "system":
            return pwd.getpwnam(self.account).pw_dir
        return os.path.join(self.shared_home_root, self.user.name)

    def gpu_capacity_source(self):
        from ..queue.manager import AllocatorCapacity

        return AllocatorCapacity(self.gpus)

    def held_gpus(self) -> int:
        return len(self.gpus.held_by(self.owner_key))

    def gpu_target(self) -> dict:
        return {"devices": tuple(g.visible_id for g in self.gpus.held_by(self.owner_key))}

    # ------------------------------------------------------------ environments

    def environment_path(self, name: str) -> str:
        return (self.environments.get(name) or {}).get("path", "")

    def environment_unavailable(self, name: str) -> str | None:
        if not os.access(os.path.join(self.environment_path(name), "bin", SERVER_COMMAND), os.X_OK):
            return str(EnvironmentNotBuilt(name))
        return None

    def use_environment(self, name: str) -> None:
        """Run the server from environment ``name`` (its jupyterhub-singleuser, its bin/ first on PATH),
        or refuse the start plainly when it is not built here."""
        why = self.environment_unavailable(name)
        if why is not None:
            error = web.HTTPError(503, why, reason="Environment not built")
            error.jupyterhub_message = why
            raise error
        self.python_env = self.environment_path(name)
        self.cmd = [os.path.join(self.python_env, "bin", SERVER_COMMAND)]

    python_env = ""  # the environment of the current start

    def form_context(self):
        # free GPUs per type: the mixin's form counts them (gpu_capacity_source), with the queue's reservations
        return {"shared_accounts": self.user_accounts == "shared"}

    # ------------------------------------------------------------ accounts

    async def ensure_account(self) -> None:
        """Create the user's system account and private home on first start."""
        try:
            pwd.getpwnam(self.account)
        except KeyError:
            self.report(30, f"Creating system account {self.account}")
            proc = await asyncio.create_subprocess_exec(
                "useradd", "--create-home", "--shell", "/bin/bash",
                "--comment", f"AI Studio user {self.user.name}", self.account,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            if proc.returncode not in (0, 9):  # 9: created meanwhile
                raise RuntimeError(f"useradd {self.account} failed: {out.decode().strip()}")
        os.chmod(self.home_dir, 0o700)

    def make_preexec_fn(self, name):
        if self.user_accounts == "system":
            then = super().make_preexec_fn(self.account)
        else:
            home = self.home_dir

            def then():
                os.chdir(home)

        limit = self._limit_fn()

        def preexec():
            limit()  # into the server's cgroup (or under its rlimit) while still root
            then()

        return preexec

    # ------------------------------------------------------------ enforced limits

    @property
    def limits(self) -> limits.Mechanism:
        return limits_mechanism(self.log)

    @property
    def cgroup(self) -> limits.ServerCgroup | None:
        if self.limits.kind == "rlimit":
            return None
        return limits.ServerCgroup(self.limits, limits.cgroup_name(self.user.name, self.name, self.studio_id))

    def _limit_fn(self):
        res = self.launch.resources if self.launch is not None else None
        if res is None:
            return lambda: None
        cgroup = self.cgroup
        if cgroup is not None:
            return cgroup.join_fn()
        cap = limits.rlimit_as(res.memory)

        def rlimit():
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        return rlimit

    def _enforce_limits(self, res) -> None:
        """Make the server's cgroup before it starts (a failure falls back to RLIMIT_AS)."""
        cgroup = self.cgroup
        if cgroup is not None:
            try:
                cgroup.create(res.cpu, res.memory)
            except OSError as e:
                self.log.warning("%s: cgroup not made (%s); falling back to RLIMIT_AS", self._log_name, e)
                _mechanism[:] = [limits.Mechanism("rlimit", reason=f"making a cgroup failed: {e}")]
        self._oom_seen = cgroup.oom_kills() if cgroup is not None and self.limits.kind != "rlimit" else 0
        self.report(50, limits.limits_line(self.limits, res.cpu, res.memory))

    async def check_memory_kills(self) -> None:
        """Tell the member (a notice in their home) and the log when the OOM killer stopped
        one of the server's processes since the last look."""
        cgroup = self.cgroup
        if cgroup is None or self.launch is None:
            return
        kills = cgroup.oom_kills()
        seen = getattr(self, "_oom_seen", None)
        self._oom_seen = kills
        if seen is None or kills <= seen:
            return
        res, profile = self.launch.resources, self.launch.profile.display_name
        self.log.warning(
            "%s: %d process(es) of %s's server stopped by its memory limit of %s (profile %s)",
            self._log_name, kills - seen, self.user.name, limits.units.human_bytes(res.memory), profile,
        )
        try:
            await write_as(
                self.account if self.user_accounts == "system" else None,
                os.path.join(self.home_dir, limits.NOTICE_FILE),
                limits.notice_text(res.memory, profile),
            )
        except Exception as e:
            self.log.warning("%s: memory-limit notice not written: %s", self._log_name, e)

    async def _watch_memory(self) -> None:
        while True:
            await asyncio.sleep(self.memory_watch_interval)
            try:
                await self.check_memory_kills()
            except Exception:
                self.log.exception("%s: checking memory-limit kills failed", self._log_name)

    memory_watch_interval = 3.0

    def _remove_cgroup(self) -> None:
        watch = getattr(self, "_memory_watch", None)
        if watch is not None:
            watch.cancel()
            self._memory_watch = None
        cgroup = self.cgroup if self.user is not None else None
        if cgroup is not None and not cgroup.remove():
            self.log.warning("%s: cgroup %s not removed", self._log_name, cgroup.dirs)

    def user_env(self, env):
        if self.user_accounts == "system":
            entry = pwd.getpwnam(self.account)
            env.update(USER=self.account, HOME=entry.pw_dir, SHELL=entry.pw_shell or "/bin/bash")
        else:
            env.update(USER=self.user.name, HOME=self.home_dir, SHELL="/bin/bash")
        return env

    def get_env(self):
        env = super().get_env()
        if self.python_env:
            env["PATH"] = os.pathsep.join([os.path.join(self.python_env, "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
        held = self.gpus.held_by(self.owner_key)
        env.update(cuda_env(held))
        if self.launch is not None:
            env[PROFILE_ENV] = self.launch.profile.slug
            env[GPUS_ENV] = str(len(held))
            if self.max_runtime:
                env[MAX_RUNTIME_ENV] = str(self.max_runtime)
        return env

    def get_args(self):
        args = super().get_args()
        if self.user_accounts == "shared" and os.geteuid() == 0:
            # shared mode chosen while root: the server runs as root, as asked
            args.append("--ServerApp.allow_root=True")
        return args

    # ------------------------------------------------------------ lifecycle

    async def start(self):
        self.reset_progress()
        self.report(10, "Checking your profile and options")
        launch = self.decide_launch()
        res = launch.resources
        try:
            self.use_environment(self.environment_of(launch))
        except web.HTTPError:
            self.end_usage(discard=True)
            raise
        self.report(20, f"Profile {launch.profile.display_name}: {res.describe()}; "
                        f"environment {self.environment_of(launch)}")
        self.cpu_limit = res.cpu
        self.mem_limit = res.memory
        if res.gpus:
            try:
                held = self.gpus.allocate(self.owner_key, res.gpus, res.gpu_type)
            except NoFreeGPUs as e:
                self.end_usage(discard=True)
                raise web.HTTPError(409, str(e), reason="No free GPU") from None
            self.report(40, f"GPUs assigned: {', '.join(f'{g.index} ({g.type})' for g in held)}")
        try:
            self._enforce_limits(res)
            if self.user_accounts == "system":
                await self.ensure_account()
            else:
                os.makedirs(self.home_dir, mode=0o700, exist_ok=True)
            await self.mount_datasets_locally(
                system=self.user_accounts == "system", account=self.account, home=self.home_dir
            )
            self.report(60, "Starting JupyterLab")
            url = await super().start()
        except BaseException:
            self.gpus.release(self.owner_key)
            self.end_usage(discard=True)
            self._remove_cgroup()
            raise
        if self.cgroup is not None:
            self._memory_watch = asyncio.ensure_future(self._watch_memory())
        self.report(80, "Waiting for JupyterLab to answer")
        return url

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:
            self.gpus.release(self.owner_key)
            self._remove_cgroup()
            self.gpus_released()

    async def poll(self):
        status = await super().poll()
        if status is None:
            await self.check_memory_kills()
        if status is None and self.runtime_exceeded():
            # past the profile's max_runtime: TERM now, KILL if it lingers; a later poll sees it gone
            if not getattr(self, "_runtime_kill_at", None):
                self.log.warning("%s ran past its limit of %ss; stopping it", self._log_name, self.max_runtime)
                self._runtime_kill_at = time.monotonic() + self.term_timeout
                await self._signal(signal.SIGTERM)
            elif time.monotonic() > self._runtime_kill_at:
                await self._signal(signal.SIGKILL)
        return status

    def clear_state(self):
        """Called when a server is gone (or about to start afresh): its GPUs are free."""
        super().clear_state()
        self._runtime_kill_at = None
        if self.user is not None:
            self.gpus.release(self.owner_key)

    def get_state(self):
        state = super().get_state()
        held = self.gpus.held_by(self.owner_key)
        if held:
            state["gpus"] = [g.index for g in held]
        return state

    def load_state(self, state):
        super().load_state(state)
        if state.get("gpus") and state.get("pid"):
            self.gpus.claim(self.owner_key, state["gpus"])
