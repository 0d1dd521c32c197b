"""The base of every hub-managed service of AI Studio (the usage page, the datasets
catalogue, announcements).

- :class:`StudioService`: a traitlets ``Application`` whose settings are documented
  traits, read from the environment the hub gives a managed service
  (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_BASE_URL``)
  and from the service's own ``AISTUDIO_*`` variables (a trait tagged ``env=NAME``);
  it builds the tornado application (with HubOAuth's callback), listens and logs.
- :class:`ServiceHandler`: the one authenticated handler base. The caller is looked up
  once per request, without blocking the event loop, with JupyterHub's public HubOAuth
  API; errors are ``{"status": CODE, "message": TEXT}`` for API calls and a plain page
  otherwise.
- :func:`listen_address`: loopback stays private, any other host means all addresses.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
from html import escape
from http.client import responses
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, UserNotAllowed
from jupyterhub.utils import url_path_join
from tornado import ioloop, web
from tornado.log import enable_pretty_logging
from traitlets import Bool, Dict, Int, List, Unicode, default
from traitlets.config import Application
import yaml

ENV_SERVICE_URL = "JUPYTERHUB_SERVICE_URL"
ENV_SERVICE_PREFIX = "JUPYTERHUB_SERVICE_PREFIX"
ENV_BASE_URL = "JUPYTERHUB_BASE_URL"

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def listen_address(url: str) -> str:
    """The address a service at ``url`` binds: its host when loopback, else all addresses
    (on Kubernetes the proxy reaches services through the hub's Service)."""
    host = urlparse(url).hostname or "127.0.0.1"
    return host if host in LOOPBACK else ""


def _exit_on_signal(signum, frame):
    raise SystemExit(0)


def _from_env(trait, raw: str):
    if isinstance(trait, (Dict, List)):
        return json.loads(raw)
    if isinstance(trait, Int):
        return int(raw)
    if isinstance(trait, Bool):
        return raw.strip().lower() in ("1", "true", "yes")
    return raw


class StudioService(Application):
    """A hub-managed service. Subclasses give ``name``, ``default_port``, their settings as
    traits tagged ``env=`` and :meth:`handlers`; ``python -m`` their module runs
    ``launch_instance()``."""

    default_port = 8010
    openapi_path: str | None = None  # the service's OpenAPI document (YAML), served at api/openapi.json

    service_url = Unicode(
        help="Where the service listens, as the hub's proxy reaches it (JUPYTERHUB_SERVICE_URL)."
    ).tag(config=True, env=ENV_SERVICE_URL)

    service_prefix = Unicode(
        help="URL prefix of the service's pages, e.g. /services/usage/ (JUPYTERHUB_SERVICE_PREFIX)."
    ).tag(config=True, env=ENV_SERVICE_PREFIX)

    base_url = Unicode("/", help="The hub's base URL (JUPYTERHUB_BASE_URL).").tag(config=True, env=ENV_BASE_URL)

    @default("service_url")
    def _default_service_url(self):
        return f"http://127.0.0.1:{self.default_port}"

    @default("service_prefix")
    def _default_service_prefix(self):
        return url_path_join(self.base_url, "services", self.name) + "/"

    def load_environment(self, environ=os.environ) -> None:
        """Set every trait tagged ``env=NAME`` whose variable is set (the command line wins)."""
        for trait_name, trait in self.traits(config=True).items():
            name = trait.metadata.get("env")
            if name and environ.get(name):
                setattr(self, trait_name, _from_env(trait, environ[name]))

    def initialize(self, argv=None):
        for sig in (signal.SIGINT, signal.SIGTERM):  # until start(): stop at once, without a traceback
            signal.signal(sig, _exit_on_signal)
        self.load_environment()
        super().initialize(argv)
        enable_pretty_logging(logger=logging.getLogger("tornado"))
        self.log.setLevel(logging.INFO)

    @property
    def hub_url(self) -> str:
        """The hub's pages, for links back to it."""
        return url_path_join(self.base_url, "hub") + "/"

    def handlers(self) -> list[tuple]:
        """``(path below the prefix, handler class, initialize kwargs)`` of the service."""
        raise NotImplementedError

    def tornado_settings(self) -> dict:
        """Extra tornado settings of the service (static files, body size...)."""
        return {}

    def openapi_document(self) -> dict:
        """The service's OpenAPI document, its server at this service's prefix."""
        with open(self.openapi_path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        doc["servers"] = [{"url": self.service_prefix.rstrip("/")}]
        return doc

    def query_parameters(self, method: str, path: str) -> set[str] | None:
        """The query parameters the OpenAPI document gives the operation at ``path`` (None: not in it)."""
        if not self.openapi_path:
            return None
        if not hasattr(self, "_operations"):
            doc = self.openapi_document()
            shared = doc.get("components", {}).get("parameters", {})

            def names(params):
                for param in params or []:
                    if "$ref" in param:
                        param = shared[param["$ref"].rsplit("/", 1)[-1]]
                    if param.get("in") == "query":
                        yield param["name"]

            self._operations = []
            for template, item in doc.get("paths", {}).items():
                pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))
                for verb, op in item.items():
                    if verb in ("get", "post", "put", "patch", "delete"):
                        allowed = set(names(item.get("parameters"))) | set(names(op.get("parameters")))
                        self._operations.append((pattern, verb.upper(), allowed))
        rest = "/" + path[len(self.service_prefix):].lstrip("/") if path.startswith(self.service_prefix) else path
        for pattern, verb, allowed in self._operations:
            if verb == method and pattern.fullmatch(rest):
                return allowed
        return None

    def make_app(self) -> web.Application:
        routes = [(url_path_join(self.service_prefix, "oauth_callback"), HubOAuthCallbackHandler)]
        if self.openapi_path:
            body = json.dumps(self.openapi_document(), ensure_ascii=False).encode()
            routes.append((url_path_join(self.service_prefix, "api/openapi.json"), OpenAPIHandler, {"body": body}))
        for path, handler, kwargs in self.handlers():
            routes.append((url_path_join(self.service_prefix, path), handler, {"service": self, **kwargs}))
        return web.Application(routes, cookie_secret=os.urandom(32), default_handler_class=NotFoundHandler,
                               default_handler_args={"service": self}, **self.tornado_settings())

    def start(self):
        app = self.make_app()
        port = urlparse(self.service_url).port or self.default_port
        app.listen(port, listen_address(self.service_url), xheaders=True)
        self.log.info("%s service at %s%s", self.name, self.service_url, self.service_prefix)
        loop = ioloop.IOLoop.current()
        for sig in (signal.SIGINT, signal.SIGTERM):  # the hub stops its services with these
            loop.asyncio_loop.add_signal_handler(sig, self.stop, sig)
        loop.start()

    def stop(self, signum: int = signal.SIGTERM):
        self.log.info("%s service: %s received, stopping", self.name, signal.Signals(signum).name)
        ioloop.IOLoop.current().stop()


class OpenAPIHandler(web.RequestHandler):
    """The service's OpenAPI document, for anyone (it tells what the API is, no data)."""

    def initialize(self, body: bytes):
        self.body = body

    def get(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(self.body)


class ServiceHandler(HubOAuthenticated, web.RequestHandler):
    """Every page and API handler of a studio service: who is asking, JSON, errors."""

    api = False  # errors as JSON always; otherwise JSON when asked for, else a page
    login_required = True  # False: a public handler (e.g. a form for people without an account)
    error_statuses: dict = {}  # exception type -> HTTP status, for errors of the service's own store

    def initialize(self, service: StudioService, **kwargs):
        self.service = service
        for key, value in kwargs.items():
            setattr(self, key, value)

    async def prepare(self):
        """Look up the caller (token or login cookie) without blocking the event loop; a
        hub user without the service's access scope gets a 403, nobody at all the login
        (pages) or a 401 (API calls), unless the handler is public (``login_required`` False)."""
        model = await self.hub_auth.get_user(self, sync=False)
        user = None
        if model:
            try:
                user = self.check_hub_user(model)
            except UserNotAllowed:
                raise web.HTTPError(
                    403, f"{model.get('kind', 'user')} {model['name']} may not use the {self.service.name} service"
                ) from None
        if user is None and self.wants_json() and self.login_required:
            # an API call without a token or login: 401 in the API's error format, not the login page
            raise web.HTTPError(401, "log in to the hub, or send a token: Authorization: token TOKEN")
        self.current_user = user
        if self.wants_json():  # the API takes the query parameters its document names, no others
            allowed = self.service.query_parameters(self.request.method, self.request.path)
            unknown = sorted(set(self.request.query_arguments) - allowed) if allowed is not None else []
            if unknown:
                raise web.HTTPError(400, f"unknown query parameter {unknown[0]!r}; this API takes "
                                         f"{', '.join(sorted(allowed)) or 'none'}")

    @property
    def user_name(self) -> str:
        return self.current_user["name"]

    @property
    def user_groups(self) -> list[str]:
        return list(self.current_user.get("groups") or [])

    @property
    def user_scopes(self) -> set[str]:
        return set(self.current_user.get("scopes") or ())

    def send_json(self, data, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False))

    def status_for(self, error: Exception) -> int | None:
        for kind in type(error).__mro__:
            if kind in self.error_statuses:
                return self.error_statuses[kind]
        return None

    def log_exception(self, typ, value, tb):
        if value is not None and self.status_for(value):
            return
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e):
        status = self.status_for(e)
        if status:
            self.send_error(status, reason_message=str(e))
            return
        super()._handle_request_exception(e)

    def wants_json(self) -> bool:
        return self.api or "application/json" in self.request.headers.get("Accept", "")

    def write_error(self, status_code, **kwargs):
        message = kwargs.get("reason_message")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if message is None:
            message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.clear_header("Content-Type")
        if status_code == 405:  # say which methods the resource has (RFC 9110)
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        if self.wants_json():
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps({"status": status_code, "message": message}))
        else:  # with nosniff, a browser shows a page without its type as text
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.finish(self.error_page(status_code, message))

    def allowed_methods(self) -> list[str]:
        return [m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
                if getattr(type(self), m.lower()) is not getattr(web.RequestHandler, m.lower())]

    def error_page(self, status: int, message: str) -> str:
        """The page a browser gets for an error; services with templates render their own."""
        hub = escape(self.service.hub_url)
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status} · AI Studio</title>'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<link rel="stylesheet" href="{hub}static/css/style.min.css"></head>'
                f'<body><nav class="navbar border-bottom mb-4"><div class="container-fluid">'
                f'<a href="{hub}home"><img src="{hub}logo" alt="AI Studio" height="28"></a></div></nav>'
                f'<main class="container"><h1 class="h3">{status} {escape(responses.get(status, ""))}</h1>'
                f'<p class="lead">{escape(message)}</p>'
                f'<p><a class="btn btn-primary" href="{hub}home">Back to the hub</a></p></main></body></html>')


class NotFoundHandler(ServiceHandler):
    """A path no route of the service has: 404 in the API's format under api/, else a page."""

    async def prepare(self):
        raise web.HTTPError(404, f"{self.request.path} is not a page or API of the {self.service.name} service")

    def wants_json(self) -> bool:
        return "/api/" in self.request.path or super().wants_json()
