"""AI Studio announcements: a hub-managed JupyterHub service for seminars, incubation calls and news."""

__version__ = "0.1.0"
