"""AI Studio's Datasets panel for JupyterLab.

The front end (a left-sidebar panel, built with @jupyter/builder) talks only to the
server handlers here, which pass its requests on to the hub's datasets catalogue
(/services/datasets/) with the server's own hub token. Every decision is the hub's:
this extension adds no data access of its own.
"""

from .handlers import setup_handlers

__version__ = "0.1.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "@aistudio/datasets"}]


def _jupyter_server_extension_points():
    return [{"module": "aistudio_datasets"}]


def _load_jupyter_server_extension(server_app):
    setup_handlers(server_app.web_app)
    server_app.log.info("aistudio_datasets: the Datasets panel's handlers at /aistudio-datasets/api/")


load_jupyter_server_extension = _load_jupyter_server_extension
