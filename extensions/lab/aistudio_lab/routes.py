"""Every server route of the extension, under one base (the panel's historical prefix):

    GET  /aistudio-datasets/api/datasets[/NAME[/schema|/preview|/snippet]]
    GET  /aistudio-datasets/api/requestable
    GET  /aistudio-datasets/api/requests
    POST /aistudio-datasets/api/requests
    GET  /aistudio-datasets/api/info            where the catalogue and the mounts are
    GET  /aistudio-datasets/api/access/NAME     whether this server can read a dataset now
    POST /aistudio-datasets/api/restart         stop this server through the hub (to mount new grants)
    GET  /aistudio-datasets/api/announcements   the current announcements (id, kind, title, updated_at)
    GET  /aistudio-datasets/api/queue           the member's GPU queue entries and the queue page
    GET  /aistudio-datasets/api/runtime         this server's run time: time left, warning points, extension
    POST /aistudio-datasets/api/runtime/extend  extend this server within the policy (409: why not)

The handlers: datasets.py (the catalogue pass-through and the info), announcements.py,
queue.py and runtime.py (the hub's own API, not a service); all ask the hub through forward.py.
"""

from __future__ import annotations

from jupyter_server.utils import url_path_join

from .announcements import AnnouncementsHandler
from .datasets import PATHS, AccessHandler, CatalogueProxy, InfoHandler, RestartHandler
from .queue import QueueHandler
from .runtime import ExtendHandler, RuntimeHandler

NAMESPACE = "aistudio-datasets"  # the front end and the tests ask these URLs: it stays


def routes(base_url: str) -> list[tuple[str, type]]:
    """The (path, handler) list, all under <base_url>/aistudio-datasets/api/."""
    base = url_path_join(base_url, NAMESPACE, "api")
    return [
        (url_path_join(base, "info"), InfoHandler),
        (url_path_join(base, "access", "([a-z0-9-]{1,42})"), AccessHandler),
        (url_path_join(base, "restart"), RestartHandler),
        (url_path_join(base, "announcements"), AnnouncementsHandler),
        (url_path_join(base, "queue"), QueueHandler),
        (url_path_join(base, "runtime"), RuntimeHandler),
        (url_path_join(base, "runtime", "extend"), ExtendHandler),
        (url_path_join(base, PATHS), CatalogueProxy),
    ]


def setup_routes(web_app) -> None:
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
