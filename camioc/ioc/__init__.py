"""camioc's EPICS Channel Access adapter: a caproto asyncio IOC over the ``core`` services.

Modules:

- :mod:`camioc.ioc.groups`: the one generic binding: a caproto ``PVGroup`` per device of
  :mod:`camioc.model`, one putter (to ``Device.put``) and one poster (the device's sink).
- :mod:`camioc.ioc.registry`: adds and removes whole groups while the server runs.
- :mod:`camioc.ioc.server`: :class:`~camioc.ioc.server.CamiocIoc`, what the composition root uses:
  which blocks exist when, status coalescing, image publishing.

The PV tables, the settings and their behaviour, ``db/`` and ``opi/`` are the device model's
(:mod:`camioc.model`); nothing here declares a PV.

This package's ``__init__`` must not import caproto: :func:`configure_caproto_environment` has to
run before ``caproto.server`` is imported, because caproto reads its tunables at import time.
"""

from __future__ import annotations

import os
import sys

#: caproto server tunables camioc sets unless the user already did (reference/caproto.md §4.3):
#: with caproto's defaults, PVs updated at >= 100 Hz reach clients with up to 1 s latency.
CAPROTO_ENVIRONMENT_DEFAULTS: dict[str, str] = {
    "CAPROTO_SERVER_MAX_LATENCY_SEC": "0.02",
    "CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC": "0.001",
}


def configure_caproto_environment(environ: dict[str, str] | None = None, *,
                                  interface: str | None = None) -> dict[str, str]:
    """Set camioc's caproto latency defaults in the environment, keeping values the user set.

    ``interface`` (the ``--interface`` bind address) becomes ``EPICS_CAS_INTF_ADDR_LIST`` unless
    the user set that: the CA server then listens where REST does (a loopback-only camioc is not
    reachable over CA from the network), instead of caproto's default of every interface.

    Call this first thing in the CLI, before anything imports ``caproto.server`` (caproto reads
    the variables once, at import of ``caproto.server.common``). Returns the effective values.
    caproto reads ``EPICS_CAS_INTF_ADDR_LIST``, ``EPICS_CA_SERVER_PORT``,
    ``EPICS_CAS_BEACON_ADDR_LIST`` ... itself.
    """
    env = os.environ if environ is None else environ
    for key, value in CAPROTO_ENVIRONMENT_DEFAULTS.items():
        env.setdefault(key, value)
    if interface and interface not in ("0.0.0.0", "::", ""):
        env.setdefault("EPICS_CAS_INTF_ADDR_LIST", interface)
    if environ is None and "caproto.server.common" in sys.modules:
        import logging

        logging.getLogger(__name__).warning(
            "caproto.server was imported before configure_caproto_environment(); "
            "the CAPROTO_SERVER_* latency settings may not be in effect"
        )
    return {key: env[key] for key in CAPROTO_ENVIRONMENT_DEFAULTS}


__all__ = ["CAPROTO_ENVIRONMENT_DEFAULTS", "configure_caproto_environment"]
