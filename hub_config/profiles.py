"""Quota profiles: loading and validating ``spawner_profiles/*.yaml``, and deciding
what a user may launch.

This is the one reader of profile files: the hub, the CLI and the Kubernetes
adapter all go through :func:`load_profiles` / :class:`ProfileStore`, and every
launch decision goes through :meth:`ProfileSet.resolve`. Nothing here needs a hub.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import jsonschema
import yaml

from . import units
from .quotas import EMPTY_POLICY, UNLIMITED, QueueSettings, QuotaPolicy, parse_limits, parse_queue

SCHEMA_PATH = Path(__file__).parent / "schema" / "profiles.schema.json"
MAX_CHOICES = 256

log = logging.getLogger("aistudio.profiles")


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ProfileProblem:
    """One problem in a profile file, worded for the admin who wrote it."""

    file: str
    slug: str
    field: str
    message: str
    kind: str = "profile"  # or "quotas", for the policy part of a file

    def __str__(self):
        return f"{self.file}: {self.kind} {self.slug}: {self.field}: {self.message}"


class InvalidProfiles(Exception):
    """The profile set cannot be used; ``problems`` says why, one line each."""

    def __init__(self, problems: list[ProfileProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LaunchRejected(Exception):
    """A launch request outside the user's rights (``status`` 403) or malformed (400)."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Resources:
    cpu: float
    memory: int  # bytes
    gpus: int = 0
    gpu_type: str | None = None
    shm: int | None = None  # bytes

    def describe(self) -> str:
        parts = []
        if self.gpus:
            gpu = f"{self.gpus}× {self.gpu_type.upper() if self.gpu_type else 'GPU'}"
            parts.append(gpu)
        parts.append(f"{units.format_cores(self.cpu)} CPU")
        parts.append(units.human_bytes(self.memory))
        return ", ".join(parts)

    def as_dict(self) -> dict:
        return {
            "cpu": self.cpu,
            "memory": units.format_quantity(self.memory),
            "gpus": self.gpus,
            "gpu_type": self.gpu_type,
            "shm": units.format_quantity(self.shm) if self.shm else None,
        }


# How each adjustable resource is read, written, and what its default step is.
_OPTION_KINDS = {
    "gpus": (units.parse_count, str, lambda lo: 1),
    "cpu": (units.parse_cores, units.format_cores, lambda lo: 1.0),
    "memory": (units.parse_quantity, units.format_quantity, lambda lo: lo),
    "shm": (units.parse_quantity, units.format_quantity, lambda lo: lo),
}
_OPTION_LABELS = {"gpus": "GPUs", "cpu": "CPU cores", "memory": "Memory", "shm": "Shared memory"}


@dataclass(frozen=True)
class Option:
    """A resource the member may adjust: one of ``values``, at most ``max_for`` their groups."""

    name: str
    display_name: str
    values: tuple
    default: object
    group_max: dict = field(default_factory=dict)

    def format(self, value) -> str:
        return _OPTION_KINDS[self.name][1](value)

    def parse(self, raw):
        return _OPTION_KINDS[self.name][0](raw)

    def label(self, value) -> str:
        if self.name in ("memory", "shm"):
            return units.human_bytes(value)
        return self.format(value)


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str
    resources: Resources
    source: str
    default: bool = False
    image: str | None = None
    groups: frozenset = frozenset()
    users: frozenset = frozenset()
    everyone: bool = False
    max_runtime: int | None = None  # seconds
    options: dict = field(default_factory=dict)  # name -> Option
    gpu_idle: tuple | None = None  # (threshold %, seconds): stop a server whose GPUs stay that idle that long
    environments: tuple = ()  # Python environments a member may choose, the default first (none: the studio's default)

    def access_groups(self, username: str, groups) -> set | None:
        """Groups through which ``username`` may launch this profile.

        None means no access; an empty set means access not tied to a group
        (listed by name, or ``everyone`` with no group of the user involved).
        """
        groups = set(groups)
        if username in self.users:
            return set()
        via = groups & self.groups
        if via:
            return via
        if self.everyone:
            return groups
        return None

    def option_max(self, option: Option, via: set):
        """The largest value of ``option`` that a user with access ``via`` may pick."""
        if not via:
            return option.values[-1]
        return max(option.group_max.get(g, option.values[-1]) for g in via)


@dataclass(frozen=True)
class AllowedProfile:
    """A profile as one user sees it: the option values they may pick."""

    profile: Profile
    choices: dict  # option name -> tuple of values within the user's bound

    def as_dict(self) -> dict:
        p = self.profile
        return {
            "slug": p.slug,
            "display_name": p.display_name,
            "description": p.description,
            "default": p.default,
            "resources": p.resources.as_dict(),
            "max_runtime": units.format_duration(p.max_runtime) if p.max_runtime else None,
            "environments": list(p.environments),
            "options": {
                name: {
                    "display_name": p.options[name].display_name,
                    "choices": [p.options[name].format(v) for v in values],
                    "default": p.options[name].format(self.default_value(name)),
                }
                for name, values in self.choices.items()
            },
        }

    def default_value(self, name):
        values = self.choices[name]
        default = self.profile.options[name].default
        return default if default in values else values[0]


@dataclass(frozen=True)
class Launch:
    """What a server will get: the chosen profile and the resources after options."""

    profile: Profile
    resources: Resources
    options: dict  # option name -> formatted value, as stored in user_options
    environment: str | None = None  # the chosen Python environment (None: the studio's default)

    @property
    def max_runtime(self):
        return self.profile.max_runtime


# --------------------------------------------------------------------------- decisions


class ProfileSet:
    """A validated, immutable set of profiles."""

    def __init__(self, profiles: list[Profile], sources: tuple = (), quotas: QuotaPolicy = EMPTY_POLICY):
        self.profiles = tuple(profiles)
        self.by_slug = {p.slug: p for p in profiles}
        self.sources = sources
        self.quotas = quotas

    def allowed_for(self, username: str, groups) -> list[AllowedProfile]:
        """The profiles ``username`` (in ``groups``) may launch, default first."""
        allowed = []
        for profile in self.profiles:
            via = profile.access_groups(username, groups)
            if via is None:
                continue
            choices = {}
            for name, option in profile.options.items():
                bound = profile.option_max(option, via)
                choices[name] = tuple(v for v in option.values if v <= bound)
            allowed.append(AllowedProfile(profile, choices))
        allowed.sort(key=lambda a: not a.profile.default)
        return allowed

    def resolve(self, username: str, groups, user_options: dict | None, *, saved=False) -> Launch:
        """Turn a launch request into a :class:`Launch`, or raise :class:`LaunchRejected`.

        ``user_options`` follows KubeSpawner: ``{"profile": slug, "<option>": value}``.
        With ``saved=True`` the options come from an earlier launch rather than
        from the request: a profile or value that no longer exists or is no longer
        allowed falls back to the defaults instead of failing.
        """
        groups = sorted(groups)
        allowed = self.allowed_for(username, groups)
        if not allowed:
            raise LaunchRejected(
                403,
                f"No profile is available to {username} (groups: {', '.join(groups) or 'none'}). "
                "Ask an administrator to grant your group a profile.",
            )
        options = dict(user_options or {})
        if not isinstance(options, dict):
            raise LaunchRejected(400, "user_options must be an object")
        slug = options.pop("profile", None)
        if slug is None or slug == "":
            chosen = allowed[0]
            if not saved:
                options = {}  # options without a profile make no sense; ignore none silently
        else:
            if not isinstance(slug, str):
                raise LaunchRejected(400, f"profile must be a profile slug, not {slug!r}")
            chosen = next((a for a in allowed if a.profile.slug == slug), None)
            if chosen is None:
                if saved:
                    return self._defaults(allowed[0])
                names = ", ".join(a.profile.slug for a in allowed)
                if slug in self.by_slug:
                    raise LaunchRejected(
                        403,
                        f"Profile {slug!r} is not available to {username} "
                        f"(groups: {', '.join(groups) or 'none'}). Available: {names}.",
                    )
                raise LaunchRejected(400, f"There is no profile {slug!r}. Available: {names}.")
        try:
            return self._apply_options(chosen, options, username, groups)
        except LaunchRejected:
            if saved:
                return self._defaults(chosen)
            raise

    def _defaults(self, allowed: AllowedProfile) -> Launch:
        return self._apply_options(allowed, {}, "", [])

    def _apply_options(self, allowed: AllowedProfile, options: dict, username, groups) -> Launch:
        profile = allowed.profile
        options = dict(options)
        environment = choose_environment(profile, options.pop(ENVIRONMENT_OPTION, None))
        unknown = sorted(set(options) - set(profile.options))
        if unknown:
            offered = ", ".join(profile.options) or "none"
            raise LaunchRejected(
                400,
                f"Profile {profile.slug!r} has no option {', '.join(map(repr, unknown))} "
                f"(its options: {offered}).",
            )
        changes, chosen = {}, {}
        for name, option in profile.options.items():
            values = allowed.choices[name]
            if name in options and options[name] not in (None, ""):
                try:
                    value = option.parse(options[name])
                except ValueError as e:
                    raise LaunchRejected(400, f"Option {name} of profile {profile.slug!r}: {e}.") from None
                if value not in option.values:
                    offered = ", ".join(option.format(v) for v in option.values)
                    raise LaunchRejected(
                        400,
                        f"{name}={options[name]} is not offered by profile {profile.slug!r}; "
                        f"choose one of {offered}.",
                    )
                if value not in values:
                    raise LaunchRejected(
                        403,
                        f"{name}={option.format(value)} exceeds your limit of {option.format(values[-1])} "
                        f"for profile {profile.slug!r} (user {username}, groups: {', '.join(groups) or 'none'}).",
                    )
            else:
                value = allowed.default_value(name)
            chosen[name] = option.format(value)
            changes[name] = value
        if len(profile.environments) > 1:
            chosen[ENVIRONMENT_OPTION] = environment
        return Launch(profile, replace(profile.resources, **changes), chosen, environment)


ENVIRONMENT_OPTION = "environment"  # the user_options key of the chosen environment (KubeSpawner's image choice)


def choose_environment(profile: Profile, asked) -> str | None:
    """The environment a launch of ``profile`` runs in: the one asked for, which must be one the
    profile offers (400 otherwise), else the profile's first (None: the studio's default)."""
    if asked in (None, ""):
        return profile.environments[0] if profile.environments else None
    if asked not in profile.environments:
        offered = ", ".join(profile.environments) or "only the studio's default"
        raise LaunchRejected(400, f"environment={asked!r} is not offered by profile {profile.slug!r}; "
                                  f"choose one of: {offered}.")
    return asked


# --------------------------------------------------------------------------- loading


_validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _schema_problem(path: str, data, error: jsonschema.ValidationError) -> ProfileProblem:
    where = list(error.absolute_path)
    slug = "-"
    if where[:1] == ["quotas"]:
        entry = ".".join(str(w) for w in where[1:3]) if len(where) >= 3 and where[1] in ("groups", "users") else "-"
        rest = where[3:] if entry != "-" else where[1:]
        problem = _schema_problem(path, {}, _relocated(error, rest))
        return ProfileProblem(path, entry, problem.field, problem.message, kind="quotas")
    if not where and error.validator == "anyOf":
        return ProfileProblem(path, "-", "profiles", "is required (a file holds profiles, quotas or both)")
    if len(where) >= 2 and where[0] == "profiles" and isinstance(where[1], int):
        item = data["profiles"][where[1]]
        slug = item.get("slug") if isinstance(item, dict) and isinstance(item.get("slug"), str) else f"#{where[1] + 1}"
        where = where[2:]
    fieldname = ".".join(str(w) for w in where)
    message = error.message
    if error.validator == "required":
        missing = error.message.split("'")[1]
        fieldname = f"{fieldname}.{missing}" if fieldname else missing
        message = "is required"
    elif error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        fieldname = ".".join(filter(None, [fieldname, extra[0] if extra else ""]))
        allowed = ", ".join(error.schema.get("properties", {}))
        message = f"unknown field (allowed here: {allowed})"
    elif error.validator == "oneOf" and "description" in error.schema:
        message = f"{error.instance!r} is invalid: {error.schema['description']}"
    elif error.validator == "pattern" and fieldname == "slug":
        message = f"{error.instance!r} is not a slug: use lowercase letters, digits and dashes"
    return ProfileProblem(path, slug, fieldname or "(file)", message)


def _relocated(error: jsonschema.ValidationError, path: list) -> jsonschema.ValidationError:
    """The same error as if ``path`` were its whole location (to name fields within an entry)."""
    copy_ = jsonschema.ValidationError(
        error.message, validator=error.validator, path=path, instance=error.instance, schema=error.schema
    )
    return copy_


def _build_option(name: str, spec: dict, base, problem) -> Option | None:
    parse, fmt, default_step = _OPTION_KINDS[name]

    def read(key, raw):
        try:
            return parse(raw)
        except ValueError as e:
            problem(f"options.{name}.{key}", str(e))
            return None

    if "choices" in spec:
        if {"min", "max", "step"} & set(spec):
            problem(f"options.{name}", "give either choices or min/max/step, not both")
            return None
        values = [read(f"choices[{i}]", v) for i, v in enumerate(spec["choices"])]
        if None in values:
            return None
        values = sorted(set(values))
    else:
        if "min" not in spec or "max" not in spec:
            problem(f"options.{name}", "needs choices, or both min and max")
            return None
        lo, hi = read("min", spec["min"]), read("max", spec["max"])
        if lo is None or hi is None:
            return None
        step = read("step", spec["step"]) if "step" in spec else default_step(lo)
        if step is None:
            return None
        if lo > hi:
            problem(f"options.{name}.min", f"min {fmt(lo)} is larger than max {fmt(hi)}")
            return None
        if not step:
            problem(f"options.{name}.step", "must be larger than 0")
            return None
        count = int((hi - lo) / step) + 1
        if count > MAX_CHOICES:
            problem(f"options.{name}.step", f"offers {count} values; use a larger step (at most {MAX_CHOICES} values)")
            return None
        values = [lo + i * step for i in range(count)]
        if values[-1] != hi:
            values.append(hi)
    if "default" in spec:
        default = read("default", spec["default"])
        if default is None:
            return None
        if default not in values:
            problem(f"options.{name}.default", f"{fmt(default)} is not among the offered values")
            return None
    else:
        default = base if base in values else values[0]
    group_max = {}
    for group, raw in (spec.get("group_max") or {}).items():
        bound = read(f"group_max.{group}", raw)
        if bound is None:
            return None
        if bound < values[0]:
            problem(f"options.{name}.group_max.{group}", f"{fmt(bound)} is below the smallest offered value {fmt(values[0])}")
            return None
        group_max[group] = bound
    return Option(name, spec.get("display_name") or _OPTION_LABELS[name], tuple(values), default, group_max)


def _build_profile(path: str, index: int, raw: dict, problems: list) -> Profile | None:
    slug = raw["slug"]
    before = len(problems)

    def problem(fieldname, message):
        problems.append(ProfileProblem(path, slug, fieldname, message))

    res = raw["resources"]
    memory = units.parse_quantity(res["memory"])
    shm = units.parse_quantity(res["shm"]) if "shm" in res else None
    if shm is not None and shm > memory:
        problem("resources.shm", f"{res['shm']} is larger than the profile's memory {res['memory']}")
    resources = Resources(
        cpu=float(res["cpu"]),
        memory=memory,
        gpus=res.get("gpus", 0),
        gpu_type=res.get("gpu_type"),
        shm=shm,
    )
    access = raw["access"]
    if not (access.get("groups") or access.get("users") or access.get("everyone")):
        problem("access", "grants access to nobody: list groups or users, or set everyone: true")
    options = {}
    for name, spec in (raw.get("options") or {}).items():
        option = _build_option(name, spec, getattr(resources, name), problem)
        if option is not None:
            options[name] = option
    if len(problems) > before:
        return None
    return Profile(
        slug=slug,
        display_name=raw["display_name"],
        description=raw.get("description", ""),
        resources=resources,
        source=path,
        default=raw.get("default", False),
        image=raw.get("image"),
        groups=frozenset(access.get("groups", ())),
        users=frozenset(access.get("users", ())),
        everyone=access.get("everyone", False),
        max_runtime=units.parse_duration(raw["max_runtime"]) if "max_runtime" in raw else None,
        gpu_idle=(float(raw["gpu_idle"]["threshold"]), units.parse_duration(raw["gpu_idle"]["after"]))
        if "gpu_idle" in raw else None,
        options=options,
        environments=tuple(raw.get("environments", ())),
    )


def load_profile_file(path: Path | str) -> tuple[list[Profile], list[ProfileProblem]]:
    """Profiles of one file, and the problems found in it."""
    profiles, _, problems = read_profile_file(path)
    return profiles, problems


def read_profile_file(path: Path | str) -> tuple[list[Profile], dict, list[ProfileProblem]]:
    """Profiles, quota policy section (raw, validated) and problems of one file."""
    name = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        return [], {}, [ProfileProblem(name, "-", "(file)", f"cannot be read: {e.strerror}")]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(e, "problem", None) or str(e)
        return [], {}, [ProfileProblem(name, "-", "(file)", f"is not valid YAML{where}: {reason}")]
    errors = sorted(_validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        return [], {}, [_schema_problem(name, data, e) for e in errors]
    problems: list[ProfileProblem] = []
    profiles = []
    for index, raw in enumerate(data.get("profiles", [])):
        profile = _build_profile(name, index, raw, problems)
        if profile is not None:
            profiles.append(profile)
    return profiles, data.get("quotas", {}), problems


def profile_files(paths) -> list[Path]:
    """The profile files named by ``paths``: files as given, folders' ``*.yaml``/``*.yml``."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        else:
            files.append(p)
    return files


def load_profiles(paths, environments=None) -> ProfileSet:
    """Load and check a whole set of profiles; raise :class:`InvalidProfiles` on any problem.
    ``environments``: the studio's environment names, which profiles may name (None: not checked)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = profile_files(paths)
    problems: list[ProfileProblem] = []
    profiles: list[Profile] = []
    seen: dict[str, Profile] = {}
    policy = _PolicyBuilder()
    for f in files:
        loaded, quota_part, found = read_profile_file(f)
        problems.extend(found)
        policy.add(str(f), quota_part, problems)
        for profile in loaded:
            if profile.slug in seen:
                problems.append(
                    ProfileProblem(str(f), profile.slug, "slug", f"already defined in {seen[profile.slug].source}")
                )
                continue
            seen[profile.slug] = profile
            profiles.append(profile)
            problems.extend(unknown_environments(profile, environments))
    defaults = [p for p in profiles if p.default]
    for extra in defaults[1:]:
        problems.append(
            ProfileProblem(
                extra.source, extra.slug, "default", f"only one profile may be the default; {defaults[0].slug} already is"
            )
        )
    if not files:
        problems.append(ProfileProblem(", ".join(map(str, paths)), "-", "(file)", "no profile files (*.yaml) found"))
    elif not profiles and not problems:
        problems.append(ProfileProblem(", ".join(map(str, paths)), "-", "profiles", "no profiles defined"))
    if problems:
        raise InvalidProfiles(problems)
    return ProfileSet(profiles, tuple(str(f) for f in files), policy.build())


def unknown_environments(profile: Profile, known) -> list[ProfileProblem]:
    if known is None:
        return []
    return [
        ProfileProblem(profile.source, profile.slug, f"environments[{i}]",
                       f"{name!r} is not an environment of the studio config (environments.available: {', '.join(known)})")
        for i, name in enumerate(profile.environments) if name not in known
    ]


class _PolicyBuilder:
    """Gathers the ``quotas:`` sections of all files; each group and user once."""

    def __init__(self):
        self.period = None
        self.groups: dict[str, tuple[str, dict]] = {}
        self.users: dict[str, tuple[str, dict]] = {}
        self.members = None
        self.queue = None

    def add(self, path: str, part: dict, problems: list):
        def twice(entry, first):
            problems.append(ProfileProblem(path, entry, "(entry)", f"already defined in {first}", kind="quotas"))

        if "period" in part:
            if self.period and self.period[1] != part["period"]:
                twice("-", self.period[0])
            self.period = (path, part["period"])
        if "queue" in part:
            if self.queue:
                twice("queue", self.queue[0])
            self.queue = (path, part["queue"])
        if "members" in part:
            if self.members:
                twice("members", self.members[0])
            self.members = (path, part["members"])
        for kind, table in (("groups", self.groups), ("users", self.users)):
            for name, entry in part.get(kind, {}).items():
                if name in table:
                    twice(f"{kind}.{name}", table[name][0])
                table[name] = (path, entry)

    def build(self) -> QuotaPolicy:
        return QuotaPolicy(
            period=self.period[1] if self.period else "month",
            group_pools={g: parse_limits(e["group"]) for g, (_, e) in self.groups.items() if "group" in e},
            group_members={g: parse_limits(e["member"]) for g, (_, e) in self.groups.items() if "member" in e},
            users={u: parse_limits(e) for u, (_, e) in self.users.items()},
            members=parse_limits(self.members[1]) if self.members else UNLIMITED,
            queue=parse_queue(self.queue[1]) if self.queue else QueueSettings(),
        )


class ProfileStore:
    """The current profile set of a folder, reloaded when its files change.

    A change is noticed at the next :meth:`current` call (each form render and
    spawn makes one), so edits apply without a restart. An invalid edit keeps
    the last good set and logs every problem; the first load must succeed.
    """

    def __init__(self, directory, logger: logging.Logger | None = None, environments=None):
        self.directory = Path(directory)
        self.log = logger or log
        self.environments = environments
        self._lock = threading.Lock()
        self._stamp = self._fingerprint()
        self._set = load_profiles(self.directory, environments)
        self._rejected_stamp = None
        self.last_problems: list[ProfileProblem] = []

    def _fingerprint(self):
        try:
            files = profile_files([self.directory])
            return tuple((str(f), os.stat(f).st_mtime_ns, os.stat(f).st_size) for f in files)
        except OSError:
            return None

    def current(self) -> ProfileSet:
        stamp = self._fingerprint()
        if stamp == self._stamp or stamp == self._rejected_stamp:
            return self._set
        with self._lock:
            try:
                new = load_profiles(self.directory, self.environments)
            except InvalidProfiles as e:
                self._rejected_stamp = stamp
                self.last_problems = e.problems
                self.log.error(
                    "Profile files changed but are invalid; keeping the last good set (%s). Problems:\n%s",
                    ", ".join(p.slug for p in self._set.profiles),
                    e,
                )
                return self._set
            self._set, self._stamp, self._rejected_stamp = new, stamp, None
            self.last_problems = []
            self.log.info("Reloaded profiles: %s", ", ".join(p.slug for p in new.profiles))
            return new
