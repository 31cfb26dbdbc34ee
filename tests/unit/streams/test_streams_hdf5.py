"""HDF5 recording of bsread messages: cam_server's DEFAULT/FLAT/BSH5 layouts (compat Appendix A)
and camioc's BSREAD (bs-h5) / BSREAD_COMPACT layouts."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from camioc.streams.bsread import BsreadDecoder, BsreadEncoder
from camioc.streams.hdf5 import DataFormatChanged, Hdf5Writer


def frames():
    for i in range(5):
        yield {
            "image": np.full((3, 4), i, np.uint16),
            "x": float(i) if i != 2 else None,  # no value at pulse 102
            "name": f"frame {i}",
            **({"late": np.int32(i)} if i >= 3 else {}),
        }, 100 + i, (1_700_000_000 + i, 10 * i)


def test_bsread_layout_has_per_channel_rows(tmp_path) -> None:
    path = tmp_path / "out.h5"
    with Hdf5Writer(path, layout="BSREAD") as writer:
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


def test_bsread_compact_layout_fills_missing_values(tmp_path) -> None:
    path = tmp_path / "flat.h5"
    with Hdf5Writer(path, layout="bsread_compact") as writer:
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
    with Hdf5Writer(path, layout="BSREAD") as writer:
        for i, shape in enumerate([(2, 2), (2, 2), (3, 3)]):
            parts = encoder.encode({"img": np.ones(shape, ">i4") * i}, pulse_id=i, timestamp=float(i))
            writer.write_message(decoder.decode([bytes(memoryview(p)) for p in parts]))
    assert "value not written" in caplog.text
    with h5py.File(path) as f:
        assert f["img/data"].shape == (2, 2, 2) and f["img/data"][1, 0, 0] == 1
    with pytest.raises(ValueError, match="layout must be one of DEFAULT, FLAT, BSH5, BSREAD, BSREAD_COMPACT"):
        Hdf5Writer(path, layout="nested")


# ------------------------------------------------------------------------------------------------ cam_server layouts
def records():
    """Three records: an image, a numpy scalar, Python int/float/bool/str, a None value."""
    for i in range(3):
        yield {
            "image": np.full((3, 4), i, np.uint16),
            "min_value": np.uint16(i),
            "width": 4,
            "x_fwhm": 1.5 * i if i != 1 else None,
            "ok": i % 2 == 0,
            "processing_parameters": f'{{"i": {i}}}',
        }, 100 + i, (1_700_000_000 + i, 10 * i)


def check_general(f: h5py.File, datasets: int) -> None:
    assert set(f["general"]) >= {"created", "user", "pid", "host", "datasets"}
    created = f["general/created"][()].decode()
    assert len(created) == 26 and created[2] == "/" and created[5] == "/" and created[19] == "."
    assert f["general/user"][()] and f["general/host"][()]
    assert np.issubdtype(f["general/pid"].dtype, np.integer) and f["general/pid"][()] > 0
    assert f["general/datasets"][()] == datasets


LAYOUT_PATHS = {
    # layout: (pulse_id, global_timestamp, value(channel), timestamp(channel)) for set k=1
    "DEFAULT": ("header1/pulse_id", "header1/global_timestamp", "data1/{}/value", "data1/{}/timestamp"),
    "FLAT": ("header1/pulse_id", "header1/global_timestamp", "data1/{}", "data1/{}_timestamp"),
    "BSH5": ("pulse_id", "global_timestamp", "{}/data", "{}/timestamp"),
}


@pytest.mark.parametrize("layout", ["DEFAULT", "FLAT", "BSH5"])
def test_camserver_layouts_datasets_dtypes_and_shapes(tmp_path, layout: str) -> None:
    path = tmp_path / f"{layout}.h5"
    with Hdf5Writer(path, layout=layout.lower() if layout == "FLAT" else layout,
                    attributes={"operator": "me", "run": 7}) as writer:
        for data, pulse_id, ts in records():
            writer.write(data, pulse_id=pulse_id, timestamp=ts)
    pid_path, gts_path, value, stamp = LAYOUT_PATHS[layout]
    channels = ["image", "min_value", "width", "x_fwhm", "ok", "processing_parameters"]
    expected = {pid_path: (np.uint64, (3,)), gts_path: (np.uint64, (3, 2)),
                value.format("image"): (np.uint16, (3, 3, 4)), value.format("min_value"): (np.uint16, (3,)),
                value.format("width"): (np.int64, (3,)), value.format("x_fwhm"): (np.float64, (3,)),
                value.format("ok"): (np.bool_, (3,)), value.format("processing_parameters"): ("S1000", (3,))}
    expected.update({stamp.format(ch): (np.uint64, (3, 2)) for ch in channels})
    with h5py.File(path) as f:
        found: list[str] = []
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        general = {f"general/{k}" for k in ("created", "user", "pid", "host", "datasets", "operator", "run")}
        assert set(found) == set(expected) | general
        for name, (dtype, shape) in expected.items():
            assert f[name].dtype == np.dtype(dtype) and f[name].shape == shape, name
        np.testing.assert_array_equal(f[pid_path][:], [100, 101, 102])
        np.testing.assert_array_equal(f[gts_path][:], [[1_700_000_000 + i, 10 * i] for i in range(3)])
        np.testing.assert_array_equal(f[stamp.format("image")][:], f[gts_path][:])
        np.testing.assert_array_equal(f[value.format("image")][2], np.full((3, 4), 2))
        x = f[value.format("x_fwhm")][:]
        assert x[0] == 0.0 and np.isnan(x[1]) and x[2] == 3.0  # None: the fill value
        assert list(f[value.format("ok")][:]) == [True, False, True]
        assert f[value.format("processing_parameters")][1] == b'{"i": 1}'
        assert f["general/operator"][()] == b"me" and f["general/run"][()] == 7
        check_general(f, datasets=1)


def test_localtime_false_writes_no_channel_timestamps(tmp_path) -> None:
    path = tmp_path / "nolocal.h5"
    with Hdf5Writer(path, localtime=False) as writer:
        for data, pulse_id, ts in records():
            writer.write(data, pulse_id=pulse_id, timestamp=ts)
    with h5py.File(path) as f:
        assert set(f["data1/image"]) == {"value"}
        assert f["header1/global_timestamp"].shape == (3, 2)


def test_records_sizes_the_datasets_and_shrinks_them_on_close(tmp_path) -> None:
    path = tmp_path / "records.h5"
    writer = Hdf5Writer(path, layout="BSH5", records=10)
    writer.open()
    assert path.exists()
    for data, pulse_id, ts in records():
        writer.write(data, pulse_id=pulse_id, timestamp=ts)
    writer.close()
    with h5py.File(path) as f:
        assert f["pulse_id"].shape == (3,) and f["image/data"].shape == (3, 3, 4) and f["image/data"].maxshape[0] == 10
    full = tmp_path / "full.h5"
    with Hdf5Writer(full, records=2) as writer:
        it = records()
        for _ in range(2):
            data, pulse_id, ts = next(it)
            writer.write(data, pulse_id=pulse_id, timestamp=ts)
        data, pulse_id, ts = next(it)
        with pytest.raises(ValueError, match="reached the total number of records"):
            writer.write(data, pulse_id=pulse_id, timestamp=ts)
    with h5py.File(full) as f:
        assert f["header1/pulse_id"].shape == (2,)


@pytest.mark.parametrize(("layout", "second"), [
    ("DEFAULT", ("header2/pulse_id", "data2/image/value")),
    ("FLAT", ("header2/pulse_id", "data2/image")),
    ("BSH5", ("pulse_id2", "image2/data")),
])
def test_change_starts_a_new_dataset_set(tmp_path, layout: str, second: tuple[str, str]) -> None:
    path = tmp_path / "change.h5"
    with Hdf5Writer(path, layout=layout, change=True) as writer:
        writer.write({"image": np.zeros((2, 2), np.uint8), "n": 1}, pulse_id=1, timestamp=1.0)
        writer.write({"image": np.zeros((2, 2), np.uint8), "n": 2}, pulse_id=2, timestamp=2.0)
        writer.write({"image": np.ones((3, 2), np.uint8), "n": 3}, pulse_id=3, timestamp=3.0)  # shape change
        writer.write({"image": np.ones((3, 2), np.uint8), "n": 4, "extra": 1.0}, pulse_id=4, timestamp=4.0)
    with h5py.File(path) as f:
        pulse_ids, images = second
        np.testing.assert_array_equal(f[pulse_ids][:], [3])
        assert f[images].shape == (1, 3, 2)
        third = {"DEFAULT": "data3/extra/value", "FLAT": "data3/extra", "BSH5": "extra3/data"}[layout]
        assert f[third].shape == (1,) and f[third].dtype == np.float64
        check_general(f, datasets=3)


def test_without_change_a_format_change_is_an_error(tmp_path) -> None:
    path = tmp_path / "nochange.h5"
    with Hdf5Writer(path) as writer:
        writer.write({"image": np.zeros((2, 2), np.uint8)}, pulse_id=1, timestamp=1.0)
        with pytest.raises(DataFormatChanged, match="^Data format changed: channel 'image'"):
            writer.write({"image": np.zeros((3, 2), np.uint8)}, pulse_id=2, timestamp=2.0)
        with pytest.raises(DataFormatChanged, match="channels added \\['b'\\]"):
            writer.write({"image": np.zeros((2, 2), np.uint8), "b": 1}, pulse_id=3, timestamp=3.0)
        with pytest.raises(DataFormatChanged, match="is int8"):  # uint8 -> int8 cannot be cast
            writer.write({"image": np.zeros((2, 2), np.int8)}, pulse_id=3, timestamp=3.0)
        writer.write({"image": np.ones((2, 2), np.uint8)}, pulse_id=4, timestamp=4.0)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["header1/pulse_id"][:], [1, 4])


def test_bad_options_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="records must be an integer >= 1"):
        Hdf5Writer(tmp_path / "x.h5", records=0)
    with pytest.raises(ValueError, match="reserved"):
        Hdf5Writer(tmp_path / "x.h5", attributes={"pid": 1})
    with pytest.raises(ValueError, match="mapping"):
        Hdf5Writer(tmp_path / "x.h5", attributes=["a"])  # type: ignore[arg-type]
