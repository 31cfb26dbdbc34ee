"""``cam_server.pipeline.data_processing`` stand-in: :mod:`.functions` and :mod:`.processor`.

``from cam_server.pipeline.data_processing import functions, processor`` imports both modules.
"""
