"""bsread/ZeroMQ data plane: native sender/receiver, the camera stream, peer counting.

The modules are importable on their own (``camioc.streams.bsread`` etc.); this package re-exports
the names other packages code against.
"""

from camioc.streams.bsread import (
    BsreadDecoder,
    BsreadEncoder,
    BsreadMessage,
    BsreadReceiver,
    BsreadSender,
    ChannelSpec,
    HeaderPolicy,
    MalformedMessageError,
)
from camioc.streams.camera_stream import CAMERA_CHANNELS, CameraStreamPublisher
from camioc.streams.zmq_monitor import PeerMonitor

__all__ = [
    "CAMERA_CHANNELS",
    "BsreadDecoder",
    "BsreadEncoder",
    "BsreadMessage",
    "BsreadReceiver",
    "BsreadSender",
    "CameraStreamPublisher",
    "ChannelSpec",
    "HeaderPolicy",
    "MalformedMessageError",
    "PeerMonitor",
]
