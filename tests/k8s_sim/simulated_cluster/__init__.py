"""A simulated Kubernetes cluster, for tests only.

No Kubernetes API server can run on the machines the suite runs on, so this package
stands in for one: an HTTP server speaking the parts of the Kubernetes API that
KubeSpawner and the hub use (``apiserver``), an object store with resource versions,
selectors and watches (``store``), validation of every object received against the
real Kubernetes OpenAPI schemas plus the API server's own rules (``validation``), and a
scheduler and kubelet stand-in that runs each pod's container as a local process in a
mount namespace of its own (``kubelet``, ``podrun``). See tests/k8s_sim/README.md for
what it simulates and what it does not.

Run it with ``python -m simulated_cluster --state-dir DIR`` (from tests/k8s_sim).
"""
