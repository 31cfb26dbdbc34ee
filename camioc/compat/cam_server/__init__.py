"""camioc's stand-in for the ``cam_server`` package: only the helper API user functions import.

Importable as ``cam_server`` in camioc's pipeline workers (see :mod:`camioc.compat`); it is not
the real cam_server and provides only ``cam_server.pipeline.data_processing.functions`` and
``cam_server.pipeline.data_processing.processor``.
"""
