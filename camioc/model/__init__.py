"""camioc's device model: every block's PVs, settings and behaviour, declared once, no transport.

- :mod:`camioc.model.settings`: the walk over the config models' marked fields
  (:mod:`camioc.config.pv`): each becomes a setting (setpoint + ``_RBV``) with its conversions.
- :mod:`camioc.model.records`: :class:`~camioc.model.records.PVDef`, alarms, image formats.
- :mod:`camioc.model.blocks`: the PV table of every block (service, camera, image, pipeline).
- :mod:`camioc.model.device`: :class:`~camioc.model.device.Device`, the generic put and post; the
  devices of :mod:`camioc.model.service`, :mod:`camioc.model.camera`, :mod:`camioc.model.pipeline`.
- :mod:`camioc.model.pvnames`: how full PV names are built from the service prefix.
- :mod:`camioc.model.dbgen`, :mod:`camioc.model.opigen`: the ``db/`` and ``opi/`` generators.

A transport (the CA adapter :mod:`camioc.ioc`; PV Access next) serves a device's rows and attaches
a :class:`~camioc.model.device.Sink`: it walks the model, it does not re-declare it.
"""
