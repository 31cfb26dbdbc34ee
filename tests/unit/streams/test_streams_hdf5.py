"""HDF5 recording of bsread messages: bs-h5 ('default') and compact ('flat') layouts."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from camioc.streams.bsread import BsreadDecoder, BsreadEncoder
from camioc.streams.hdf5 import Hdf5Writer


def frames():
    for i in range(5):
        yield {
            "image": np.full((3, 4), i, np.uint16),
            "x": float(i) if i != 2 else None,  # no value at pulse 102
            "name": f"frame {i}",
            **({"late": np.int32(i)} if i >= 3 else {}),
        }, 100 + i, (1_700_000_000 + i, 10 * i)


def test_default_layout_has_per_channel_rows(tmp_path) -> None:
    path = tmp_path / "out.h5"
    with Hdf5Writer(path) as writer:
        for data, pulse_id, ts in frames():
            writer.write(data, pulse_id=pulse_id, timestamp=ts)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["pulse_id"][:], [100, 101, 102, 103, 104])
        assert f["image/data"].shape == (5, 3, 4) and f["image/data"].dtype == np.uint16
        assert f["image/data"][4].max() == 4
        np.testing.assert_array_equal(f["x/pulse_id"][:], [100, 101, 103, 104])
        np.testing.assert_array_equal(f["x/data"][:, 0], [0.0, 1.0, 3.0, 4.0])
        assert f["x/data"].shape == (4, 1)
        np.testing.assert_array_equal(f["late/pulse_id"][:], [103, 104])
        np.testing.assert_array_equal(f["image/timestamp"][:], 1_700_000_000 + np.arange(5))
        np.testing.assert_array_equal(f["image/timestamp_offset"][:], 10 * np.arange(5))
        assert f["name/data"].asstr()[3] == "frame 3"


def test_flat_layout_fills_missing_values(tmp_path) -> None:
    path = tmp_path / "flat.h5"
    with Hdf5Writer(path, layout="flat") as writer:
        for data, pulse_id, ts in frames():
            writer.write(data, pulse_id=pulse_id, timestamp=ts)
    with h5py.File(path) as f:
        assert set(f["data"]) == {"image", "x", "name", "late"}
        x = f["data/x"][:, 0]
        assert np.isnan(x[2]) and x[4] == 4.0 and len(x) == 5
        np.testing.assert_array_equal(f["data/late"][:, 0], [0, 0, 0, 3, 4])


def test_records_decoded_messages_and_skips_shape_changes(tmp_path, caplog) -> None:
    encoder, decoder = BsreadEncoder(), BsreadDecoder()
    path = tmp_path / "rec.h5"
    with Hdf5Writer(path) as writer:
        for i, shape in enumerate([(2, 2), (2, 2), (3, 3)]):
            parts = encoder.encode({"img": np.ones(shape, ">i4") * i}, pulse_id=i, timestamp=float(i))
            writer.write_message(decoder.decode([bytes(memoryview(p)) for p in parts]))
    assert "value not written" in caplog.text
    with h5py.File(path) as f:
        assert f["img/data"].shape == (2, 2, 2) and f["img/data"][1, 0, 0] == 1
    with pytest.raises(ValueError):
        Hdf5Writer(path, layout="nested")
