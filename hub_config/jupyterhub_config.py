"""JupyterHub config of AI Studio: everything comes from the studio config.

`aistudio up` runs ``jupyterhub -f`` on this file; the studio config file, data
folder and port reach it through AISTUDIO_CONFIG, AISTUDIO_DATA_DIR and AISTUDIO_PORT.
"""

from hub_config.startup import prepare

c = get_config()  # noqa: F821 (provided by JupyterHub)
c.merge(prepare())
