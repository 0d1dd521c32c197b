"""AI Studio's hub side: studio config, quota profiles, GPUs, spawners and login."""

__version__ = "0.1.0"
