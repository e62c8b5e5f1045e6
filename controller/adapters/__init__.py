"""Adapters: the only controller code that does I/O (Prometheus, Kubernetes, the simulator's HTTP API).

Each implements a Protocol of `controller/ports.py`; bootstrap code in `edgectl/` builds them and
hands them to Temporal activities.
"""
