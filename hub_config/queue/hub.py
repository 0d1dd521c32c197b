"""The GPU queue wired into the running hub: one :class:`GPUQueue` per usage database,
a background loop that offers reservations (lapses, policy and inventory changes), and
what happens when a reservation is made: an e-mail where SMTP is configured, and for a
member who asked for it, the hub starts the server itself through its own REST API
(with the token of the ``gpu-queue`` service, which holds the ``servers`` scope)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Callable

from ..usage.store import usage_store
from . import core
from .core import Entry
from .manager import ClusterCapacity, GPUQueue

log = logging.getLogger("aistudio.queue")

SERVICE = "gpu-queue"  # the token-only service the hub's own starts are made with
REBALANCE_EVERY = 2.0  # seconds between looks at lapses and freed GPUs
CAPACITY_EVERY = 10.0  # seconds between reads of a cluster's GPU capacity

_queues: dict[str, GPUQueue] = {}


def gpu_queue(usage_url: str, policy: Callable, capacity: Callable | None = None) -> GPUQueue:
    """The hub's queue on ``usage_url``; the first caller that can say where free GPUs are
    counted (``capacity()``, called once) gives it its capacity."""
    queue = _queues.get(usage_url)
    if queue is None:
        queue = _queues[usage_url] = GPUQueue(usage_store(usage_url), policy)
    if queue.capacity is None and capacity is not None:
        queue.capacity = capacity()
        if queue.capacity is not None:
            _start_loop(queue)
    return queue


def installed() -> GPUQueue | None:
    """The queue of this hub process (the hub's handlers and pages use it)."""
    return next(iter(_queues.values()), None)


def _start_loop(queue: GPUQueue) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop: a command line, a unit test
        return
    if getattr(queue, "_loop_task", None) is None:
        queue._loop_task = loop.create_task(_keep_offering(queue))


async def _keep_offering(queue: GPUQueue) -> None:
    refreshed = float("-inf")
    while True:
        try:
            if isinstance(queue.capacity, ClusterCapacity) and time.monotonic() - refreshed >= CAPACITY_EVERY:
                await queue.capacity.refresh()
                refreshed = time.monotonic()
            queue.rebalance()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Queue: offering reservations failed; trying again")
        await asyncio.sleep(REBALANCE_EVERY)


# --------------------------------------------------------------------------- when a reservation is made


def reservation_mail(entry: Entry, queue_url: str) -> tuple[str, str]:
    """Subject and body of the e-mail that tells a member their GPUs are reserved."""
    kind = (entry.gpu_type or "GPU").upper()
    until = until_text(entry.reserved_until or time.time())
    subject = f"AI Studio: {entry.gpus}× {kind} reserved for you until {until}"
    if entry.auto_start:
        action = "The studio is starting your server now; it will be ready in your browser in a moment."
    else:
        action = f"Start your server before {until}, or the reservation passes to the next member in line."
    body = (f"Hello {entry.user},\n\n{entry.gpus}× {kind} ({entry.profile}) are reserved for you.\n"
            f"{action}\n\n{queue_url}\n\n-- AI Studio\n")
    return subject, body


def mail_listener(notifier, queue_url: str):
    async def tell(entry: Entry) -> None:
        subject, body = reservation_mail(entry, queue_url)
        await notifier.notify(entry.user, subject, body)

    return tell


def start_listener(hub_api: str, token: str):
    """Start the server of a member who asked the hub to, when their reservation arrives."""

    async def start(entry: Entry) -> None:
        if not entry.auto_start:
            return
        from tornado.httpclient import AsyncHTTPClient
        from urllib.parse import quote

        path = f"users/{quote(entry.user, safe='')}/server"
        if entry.server_name:
            path = f"users/{quote(entry.user, safe='')}/servers/{quote(entry.server_name, safe='')}"
        response = await AsyncHTTPClient().fetch(
            hub_api.rstrip("/") + "/" + path, method="POST", raise_error=False,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            body=json.dumps(entry.user_options or {"profile": entry.profile}),
        )
        if response.code >= 400:
            log.warning("Queue: starting %s's server for its reservation failed: %s %s",
                        entry.user, response.code, response.body[:300])
        else:
            log.info("Queue: started %s's server for its reservation (%s)", entry.user, response.code)

    return start


def until_text(moment: float) -> str:
    """A reservation's end as every page and the e-mail say it: ``14:20:05 UTC``."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(moment))


class QueueNotices:
    """``gpu_queue`` in the hub's templates: a member's place or reservation, for the notice
    on every hub page (``templates/page.html``)."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def for_user(self, name: str) -> dict | None:
        queue = installed()
        if queue is None:
            return None
        try:
            mine = [row for row in queue.view() if row["user"] == name]
        except Exception:
            log.exception("Queue: reading %s's entry failed", name)
            return None
        if not mine:
            return None
        row = mine[0]
        row["kind"] = (row["gpu_type"] or "GPU").upper()
        if row["reserved_until"]:
            row["until"] = until_text(row["reserved_until"])
        row["queue_url"] = self.base_url + "hub/queue"
        return row


__all__ = ["gpu_queue", "installed", "QueueNotices", "reservation_mail", "core"]


def install(usage_url: str, policy: Callable, capacity: Callable | None, *, hub_api: str, token: str,
            notifier=None, queue_url: str = "") -> GPUQueue:
    """In the hub process, at start (``configurer.gather``): the queue on ``usage_url``, with
    its reservation listeners: the hub's own starts through ``hub_api`` with ``token``, and
    e-mail through ``notifier`` (None: no SMTP) pointing members to ``queue_url``."""
    queue = gpu_queue(usage_url, policy, capacity)
    if not queue.reservation_listeners:
        queue.reservation_listeners.append(start_listener(hub_api, token))
        if notifier is not None:
            queue.reservation_listeners.append(mail_listener(notifier, queue_url))
    return queue
