"""Pure decisions of a server's run time: how long it has left, which warnings are due,
and whether it may be extended. (How long its GPUs have been idle: ``samplers.idle_since``.)"""

from __future__ import annotations

from dataclasses import dataclass

from .. import units
from ..quotas import Limits

DEFAULT_WARN_BEFORE = (1800, 300)  # seconds before a stop that members are warned


def time_left(started_at: float | None, max_runtime: float | None, now: float) -> float | None:
    """Seconds until a server's run-time limit (None: no limit, or not started)."""
    if not max_runtime or started_at is None:
        return None
    return started_at + max_runtime - now


def warnings_due(left: float | None, warn_before, sent) -> list[int]:
    """The warning points (seconds before the stop) reached and not yet sent, largest first.
    Only the nearest one is worth sending when several are reached at once."""
    if left is None:
        return []
    reached = sorted((p for p in warn_before if left <= p and p not in sent), reverse=True)
    return reached


@dataclass(frozen=True)
class Extension:
    seconds: int = 0
    refusal: str | None = None  # why not, as the member reads it


def may_extend(limits: Limits, done: int, gpus: int, left: float | None, used_hours: float,
               group_budgets: dict | None = None) -> Extension:
    """Whether a running server may be extended now, and by how much.

    ``done``: extensions it already had; ``used_hours``: the member's GPU-hours this period
    (the running server's so far included); ``group_budgets``: ``{group: (used, budget)}``.
    An extension never takes the member (or a group) past a GPU-hour budget: the server's
    GPUs for its time left plus the extension must fit in what is left."""
    if left is None:
        return Extension(refusal="This server has no run-time limit: there is nothing to extend.")
    if not limits.extend_by:
        return Extension(refusal="Your quota does not allow extending servers: stop it and start a new one.")
    allowed = 1 if limits.max_extensions is None else limits.max_extensions
    if done >= allowed:
        return Extension(refusal=f"This server was already extended {done} of {allowed} times.")
    if gpus:
        more = gpus * (max(left, 0) + limits.extend_by) / 3600
        by = units.format_duration(limits.extend_by)
        if limits.gpu_hours is not None and used_hours + more > limits.gpu_hours:
            return Extension(refusal=(
                f"Extending by {by} would take you past your GPU-hour budget: {used_hours:.1f} of "
                f"{limits.gpu_hours:g} used, and this server would need {more:.1f} more."))
        for group, (used, budget) in sorted((group_budgets or {}).items()):
            if used + more > budget:
                return Extension(refusal=(
                    f"Extending by {by} would take group {group} past its GPU-hour budget "
                    f"({used:.1f} of {budget:g} used)."))
    return Extension(seconds=limits.extend_by)
