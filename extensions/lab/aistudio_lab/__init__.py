"""AI Studio's JupyterLab extension: the Datasets panel, the announcements notices, the
GPU queue's reservation notices and the server's run time (status bar, warnings, extension).

The front end (four plugins, built with @jupyter/builder) talks only to the server
handlers here (routes.py), which pass its requests on to the hub's services (the
datasets catalogue, the announcements) or to the hub's own API (the GPU queue, the run time) with the
server's own hub token. Every decision is the hub's: this extension adds no data access of its own.
"""

from .routes import NAMESPACE, setup_routes

__version__ = "0.1.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "@aistudio/lab"}]


def _jupyter_server_extension_points():
    return [{"module": "aistudio_lab"}]


def _load_jupyter_server_extension(server_app):
    setup_routes(server_app.web_app)
    server_app.log.info(f"aistudio_lab: the Datasets panel's, the announcements', the queue's and the run time's "
                        f"handlers at /{NAMESPACE}/api/")


load_jupyter_server_extension = _load_jupyter_server_extension
