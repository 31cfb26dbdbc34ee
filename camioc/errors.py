"""One exception hierarchy for camioc.

Every camioc error also derives from the builtin that best describes it, so callers that only
know Python's builtins (``except ValueError``) still catch them. The REST layer turns any of them
into cam_server's error envelope with ``str(exc)`` as status; the IOC layer turns them into a
refused put (ECA_PUTFAIL) with the same text. Messages are therefore user-facing: they name the
problem and, where cam_server had an exact wording, reproduce it.
"""

from __future__ import annotations


class CamiocError(Exception):
    """Base class of every error camioc raises on purpose."""


class ConfigError(ValueError, CamiocError):
    """A configuration (file, REST body, caput) is invalid; nothing was changed."""


class InvalidNameError(ValueError, CamiocError):
    """A name used as a file name (camera, pipeline, background, script) is invalid."""


class NotFoundError(LookupError, CamiocError):
    """A named camera, pipeline, instance or background does not exist."""


class CameraOfflineError(ConnectionError, CamiocError):
    """A camera source cannot be reached (e.g. 'Camera with prefix X is offline')."""


class InstanceError(RuntimeError, CamiocError):
    """An instance could not be started, stopped or reached."""


class ReadOnlyError(PermissionError, CamiocError):
    """A change was requested on a read-only instance."""


class ProcessingError(RuntimeError, CamiocError):
    """An image could not be processed (bad background, failing user function...)."""


__all__ = [
    "CamiocError",
    "CameraOfflineError",
    "ConfigError",
    "InstanceError",
    "InvalidNameError",
    "NotFoundError",
    "ProcessingError",
    "ReadOnlyError",
]
