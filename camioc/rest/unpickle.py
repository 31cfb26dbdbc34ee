"""Safe loading of the pickled arrays that cam_server clients PUT (``.../image_bytes``).

``CamClient.set_background_image_array`` and ``PipelineClient.set_background_image_array`` send
``pickle.dumps(array, protocol=0)``. cam_server ran ``pickle.loads`` on the body, which executes
whatever the pickle names: any client could run code on the server. camioc accepts the same
bodies but unpickles them with an allow-list (:class:`ArrayUnpickler`):

* only the callables a numpy array pickle needs can be named: numpy's ``_reconstruct``
  (under ``numpy.core.multiarray`` and ``numpy._core.multiarray``), ``numpy.ndarray``,
  ``numpy.dtype``, ``_codecs.encode`` (how protocols 0-2 spell ``bytes``) and numpy's
  ``_frombuffer`` (protocol 5);
* each is replaced by a guarded version: ``_reconstruct`` only builds empty plain ndarrays (as
  genuine pickles do; the data arrive in the following ``BUILD``, bounded by the body size),
  ``encode`` only accepts latin-1 and ``_frombuffer`` only wraps bytes from the pickle itself;
* the result must be a plain ``numpy.ndarray`` of a numeric dtype (bool, int, uint, float,
  complex) — object, string and structured arrays are refused.

Everything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``, numpy subclasses,
extension-registry codes, persistent ids...) is refused *before* it is called, with a
:class:`~camioc.errors.ConfigError` that names what was refused.
"""

from __future__ import annotations

import codecs
import io
import pickle
from typing import Any, cast

import numpy as np

from camioc.errors import ConfigError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct  # type: ignore[attr-defined,no-redef]

NUMERIC_KINDS = "biufc"


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("only plain numpy.ndarray objects are accepted")
    if tuple(shape) != (0,):
        raise pickle.UnpicklingError("array pickles reconstruct from an empty array")
    # numpy's stubs type its private ``_reconstruct`` as returning ``object``; given ``np.ndarray``
    # as the subtype it builds a plain ndarray
    return cast(np.ndarray, _np_reconstruct(np.ndarray, (0,), dtype))


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or str(encoding).lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError("only latin-1 encoded byte strings are accepted")
    return codecs.encode(text, "latin1")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if not isinstance(buffer, (bytes, bytearray, pickle.PickleBuffer)) or not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError("only in-band array buffers are accepted")
    if order not in ("C", "F"):
        raise pickle.UnpicklingError("invalid array order")
    # numpy's stubs list the buffer types np.frombuffer takes for Python < 3.12 (no PEP 688
    # ``Buffer`` protocol there) and leave out pickle.PickleBuffer, which numpy accepts at runtime
    array = np.frombuffer(buffer, dtype=dtype)  # pyright: ignore[reportCallIssue, reportArgumentType]
    return array.reshape(tuple(int(n) for n in shape), order=order)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and nothing else (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load '{module}.{name}'") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not accepted")


def unpickle_array(data: bytes) -> np.ndarray:
    """The numeric ndarray pickled in ``data``; anything else raises ``ConfigError``."""
    if not data:
        raise ConfigError("Request body is empty: expected a pickled numpy array.")
    try:
        value = ArrayUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise ConfigError(f"Invalid body: {exc}; only a pickled numpy array of numeric dtype is accepted.") from None
    except Exception as exc:  # noqa: BLE001 - any malformed pickle is a client error
        raise ConfigError(
            f"Invalid body: not a pickled numpy array ({type(exc).__name__}: {exc})."
        ) from None
    if type(value) is not np.ndarray:
        raise ConfigError(f"Invalid body: expected a pickled numpy array, got {type(value).__name__}.")
    if value.dtype.kind not in NUMERIC_KINDS or value.dtype.fields is not None:
        raise ConfigError(f"Invalid body: array dtype {value.dtype} is not numeric.")
    return value


__all__ = ["ArrayUnpickler", "NUMERIC_KINDS", "unpickle_array"]
