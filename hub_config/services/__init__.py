"""Hub-managed services: the one base they share (``base``) and the one place that turns
their specs into JupyterHub settings (``spec``)."""
