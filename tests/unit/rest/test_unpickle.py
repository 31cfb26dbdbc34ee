"""The allow-list unpickler: numpy arrays of numeric dtype load, nothing else runs."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from camioc.errors import ConfigError
from camioc.rest.unpickle import unpickle_array


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint8", "float32", "float64", "int64", "bool", "complex64", ">u2"])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_numeric_arrays_round_trip(dtype: str, protocol: int) -> None:
    array = (np.arange(24) % 5).astype(dtype).reshape(4, 6)
    loaded = unpickle_array(pickle.dumps(array, protocol=protocol))
    # (numpy's own pickle.loads drops a non-native byte order too: compare kind and size)
    assert (loaded.dtype.kind, loaded.dtype.itemsize) == (array.dtype.kind, array.dtype.itemsize)
    assert loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)


def test_fortran_and_large_array() -> None:
    array = np.asfortranarray(np.random.default_rng(1).integers(0, 65535, size=(960, 1280), dtype=np.uint16))
    np.testing.assert_array_equal(unpickle_array(pickle.dumps(array, protocol=0)), array)


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _EvilPopen:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def __reduce__(self):
        return (subprocess.Popen, (self.argv,))


def test_os_system_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        with pytest.raises(ConfigError, match=r"refused to load 'posix\.system'"):
            unpickle_array(pickle.dumps(_Evil(f"touch {marker}"), protocol=protocol))
    assert not marker.exists()


def test_popen_and_eval_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError, match=r"refused to load '(subprocess|commands)\.Popen'"):
        unpickle_array(pickle.dumps(_EvilPopen(["touch", str(marker)]), protocol=0))
    handmade = b"cbuiltins\neval\n(V__import__('os').system('touch " + str(marker).encode() + b"')\ntR."
    with pytest.raises(ConfigError, match=r"refused to load 'builtins\.eval'"):
        unpickle_array(handmade)
    assert not marker.exists()


def test_evil_object_hidden_inside_object_array_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    array = np.empty(1, dtype=object)
    array[0] = _Evil(f"touch {marker}")
    with pytest.raises(ConfigError, match="refused to load 'posix.system'"):
        unpickle_array(pickle.dumps(array, protocol=0))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array(["a", "b"]), "array dtype <U1 is not numeric"),
        (np.array([1, "x"], dtype=object), "array dtype object is not numeric"),
        (np.zeros(2, dtype=[("a", "<u2"), ("b", "<f4")]), "is not numeric"),
        ([1, 2, 3], "expected a pickled numpy array, got list"),
        ({"a": 1}, "expected a pickled numpy array, got dict"),
        (np.float64(1.0), "refused to load 'numpy._core.multiarray.scalar'"),
        (np.ma.masked_array([1, 2]), "refused to load 'numpy.ma.core._mareconstruct'"),
        (np.arange(3).view(np.recarray), "refused to load 'numpy.rec"),
    ],
)
def test_non_arrays_are_refused(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        unpickle_array(pickle.dumps(value, protocol=0))


def test_garbage_and_empty_bodies() -> None:
    with pytest.raises(ConfigError, match="Request body is empty"):
        unpickle_array(b"")
    with pytest.raises(ConfigError, match="Invalid body: "):
        unpickle_array(b"this is not a pickle")
    with pytest.raises(ConfigError, match="Invalid body: not a pickled numpy array"):
        unpickle_array(b"\x80\x05")
    truncated = pickle.dumps(np.zeros(10), protocol=0)[:-20]
    with pytest.raises(ConfigError, match="Invalid body"):
        unpickle_array(truncated)


def test_reconstruct_with_huge_shape_is_refused() -> None:
    # A genuine pickle reconstructs from shape (0,); a forged one must not allocate.
    forged = (
        b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I100000000000\ntc_codecs\nencode\n"
        b"(Vb\nVlatin1\ntRtR."
    )
    with pytest.raises(ConfigError, match="array pickles reconstruct from an empty array"):
        unpickle_array(forged)


def test_forged_subclass_reconstruct_is_refused() -> None:
    # _reconstruct with a subtype other than ndarray (here numpy.dtype, which is allowed by name)
    forged = (
        b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\ndtype\n(I0\ntc_codecs\nencode\n(Vb\nVlatin1\ntRtR."
    )
    with pytest.raises(ConfigError, match="only plain numpy.ndarray objects are accepted"):
        unpickle_array(forged)


def test_encode_only_latin1() -> None:
    forged = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    with pytest.raises(ConfigError, match="only latin-1 encoded byte strings are accepted"):
        unpickle_array(forged)
