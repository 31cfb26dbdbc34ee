"""camioc's EPICS PV Access adapter: a p4p server beside the caproto IOC, over the same devices.

Modules:

- :mod:`camioc.pva.values`: a :class:`~camioc.model.records.PVDef` row as a Normative Type
  (NTScalar, NTScalarArray, NTEnum) with its display/control metadata, and a post as a PVA value.
- :mod:`camioc.pva.images`: the ``Pva1:Image`` NTNDArray of an image block, fed with whole frames
  and posted off the event loop (latest frame only: a slow client or a slow post skips frames).
- :mod:`camioc.pva.server`: :class:`~camioc.pva.server.PvaServer`, a
  :class:`~camioc.model.device.Transport`: the IOC tells it of every block it serves over CA,
  it serves the same rows under the same names, hands client puts to ``Device.put`` and attaches
  a sink to the device (one value, both protocols).

Like :mod:`camioc.ioc`, nothing here declares a PV: the rows are the device model's.
"""

from __future__ import annotations

import os

#: Listen on every interface unless ``--interface`` says otherwise (pvxs' default).
_ANY_INTERFACE = ("0.0.0.0", "::", "")


def configure_pva_environment(environ: dict[str, str] | None = None, *, interface: str | None = None,
                              port: int | None = None) -> dict[str, str]:
    """Bind the PVA server where REST and CA listen, keeping what the environment already set.

    ``interface`` becomes ``EPICS_PVAS_INTF_ADDR_LIST`` unless set (a loopback-only camioc must not
    serve PVA to the network); ``port`` (``--pva-port``, given explicitly) ``EPICS_PVAS_SERVER_PORT``. pvxs reads
    ``EPICS_PVAS_*`` (falling back to ``EPICS_PVA_*``) when the server is made, so this may run any
    time before :meth:`~camioc.pva.server.PvaServer.start`. Returns the variables it decided.
    """
    env = os.environ if environ is None else environ
    decided: dict[str, str] = {}
    if interface and interface not in _ANY_INTERFACE and "EPICS_PVA_INTF_ADDR_LIST" not in env:
        decided["EPICS_PVAS_INTF_ADDR_LIST"] = env.setdefault("EPICS_PVAS_INTF_ADDR_LIST", interface)
    if port is not None:  # an explicit option wins over the environment
        decided["EPICS_PVAS_SERVER_PORT"] = env["EPICS_PVAS_SERVER_PORT"] = str(int(port))
    return decided


__all__ = ["configure_pva_environment"]
