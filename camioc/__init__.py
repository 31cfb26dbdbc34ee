"""camioc: an EPICS-native camera and image-pipeline server.

Cameras (simulation, EPICS, bsread) become bsread image streams; pipelines process them;
a caproto IOC, bsread/ZeroMQ streams and a cam_server-compatible REST API expose everything.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
