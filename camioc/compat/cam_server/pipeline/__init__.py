"""``cam_server.pipeline`` stand-in (see :mod:`camioc.compat`)."""
