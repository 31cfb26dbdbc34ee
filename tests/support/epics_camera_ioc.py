"""A caproto test IOC that looks like an EPICS camera (cam_server or areaDetector PV names).

Run as a subprocess (tests) or by hand::

    python tests/support/epics_camera_ioc.py --prefix CAM1 --convention areadetector \
        --width 64 --height 48 --rate 20 [--port 5074]

``--port`` sets ``EPICS_CA_SERVER_PORT``/``EPICS_CAS_SERVER_PORT`` before caproto starts (tests use
``$CAMIOC_TEST_CA_PORT2``, the auxiliary port every test client searches). The IOC prints ``READY``
on stdout when it serves.

PVs (``P`` = ``--prefix``; images are flat CA SHORT waveforms, UInt16 bits reinterpreted):

* ``camserver``: ``P:INIT`` (enum, ``--init-status``, default INIT), ``P:WIDTH``, ``P:HEIGHT``
  (writable: a put changes the geometry of the next frame), ``P:FPICTURE``, ``P:BSREADCONFIG``
  (string, ``--bsread-address``).
* ``areadetector``: ``P:cam1:SizeX``/``SizeY`` (writable: applied to the next frame), ``P:cam1:Acquire``
  (Done/Acquire: stops/starts frames), ``P:cam1:ArraySize0_RBV``/``1_RBV``, ``P:cam1:ArrayCounter_RBV``,
  ``P:cam1:DataType_RBV`` (UInt16), ``P:cam1:ColorMode_RBV`` (Mono), ``P:image1:ArrayData``,
  ``P:image1:ArrayCounter_RBV``, ``P:image1:ArraySize0_RBV``/``1_RBV``.
  Per frame, like areaDetector: sizes (when changed), then ``ArrayData``, then the counters, all
  with the frame's timestamp (``--counter-first`` posts the counters before the data;
  ``--unstamped`` gives the counters their own, later timestamps).

Test pattern of frame ``n`` (``pattern()``; importable): ``(x * 7 + y * 1031 + n * 1009) & 0xFFFF``
as uint16, row-major ``(height, width)``. ``n`` is the areaDetector ``ArrayCounter_RBV``; 1009 is odd,
so ``n mod 65536`` can be recovered from pixel (0, 0) (``frame_number()``).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

_INVERSE_1009 = pow(1009, -1, 65536)


@functools.lru_cache(maxsize=4)
def _base(width: int, height: int) -> np.ndarray:
    y, x = np.indices((height, width), dtype=np.uint32)
    base = ((x * 7 + y * 1031) & 0xFFFF).astype(np.uint16)
    base.flags.writeable = False
    return base


def pattern(n: int, width: int, height: int) -> np.ndarray:
    """The uint16 test image of frame ``n``."""
    return _base(width, height) + np.uint16((n % 65536) * 1009 % 65536)  # wraps mod 65536


def frame_number(image: np.ndarray) -> int:
    """``n mod 65536`` of a test image (from its pixel (0, 0))."""
    return int(int(np.asarray(image).view(np.uint16)[0, 0]) * _INVERSE_1009 % 65536)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prefix", required=True, help="camera prefix, without trailing ':'")
    parser.add_argument("--convention", choices=("camserver", "areadetector"), default="camserver")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second")
    parser.add_argument("--max-pixels", type=int, default=0, help="image PV length (default 4*W*H)")
    parser.add_argument("--port", type=int, default=0, help="CA server port")
    parser.add_argument("--init-status", default="INIT", help="camserver :INIT state (INIT or OFFLINE)")
    parser.add_argument("--bsread-address", default="", help="camserver :BSREADCONFIG value")
    parser.add_argument("--counter-first", action="store_true", help="post counters before data")
    parser.add_argument("--unstamped", action="store_true", help="counters get their own timestamps")
    return parser.parse_args(argv)


def _build(args: argparse.Namespace):  # noqa: C901 (one class per convention, defined inline)
    from caproto import ChannelType
    from caproto.server import PVGroup, pvproperty

    max_pixels = args.max_pixels or 4 * args.width * args.height
    first = pattern(0, args.width, args.height).view(np.int16).ravel()
    period = 1.0 / args.rate if args.rate > 0 else 0.1

    def image_pv(name: str):
        return pvproperty(value=first, dtype=ChannelType.INT, max_length=max_pixels, name=name,
                          read_only=True, alarm_group="image")

    async def pace(async_lib, next_due: float) -> float:
        next_due += period
        delay = next_due - time.monotonic()
        if delay < -period:  # fell behind: restart the schedule instead of bursting
            next_due, delay = time.monotonic(), 0.0
        await async_lib.library.sleep(max(delay, 0.0))
        return next_due

    class CamServerCamera(PVGroup):
        init = pvproperty(value=args.init_status, dtype=ChannelType.ENUM,
                          enum_strings=sorted({"INIT", "OFFLINE", args.init_status}), name="INIT",
                          alarm_group="init")
        width = pvproperty(value=args.width, name="WIDTH", alarm_group="width")
        height = pvproperty(value=args.height, name="HEIGHT", alarm_group="height")
        fpicture = image_pv("FPICTURE")
        bsreadconfig = pvproperty(value=args.bsread_address, dtype=ChannelType.STRING, name="BSREADCONFIG",
                                  read_only=True, alarm_group="bsread")

        @width.putter
        async def width(self, instance, value):
            if not 0 < value * self.height.value <= max_pixels:
                raise ValueError(f"width {value} too large")

        @height.putter
        async def height(self, instance, value):
            if not 0 < value * self.width.value <= max_pixels:
                raise ValueError(f"height {value} too large")

        @fpicture.startup
        async def fpicture(self, instance, async_lib):
            n, next_due = 0, time.monotonic()
            while True:
                next_due = await pace(async_lib, next_due)
                n += 1
                w, h = self.width.value, self.height.value
                frame = pattern(n, w, h).view(np.int16).ravel()
                await instance.write(frame, timestamp=time.time())

    class AreaDetectorCamera(PVGroup):
        size_x = pvproperty(value=args.width, name="cam1:SizeX", alarm_group="sx")
        size_y = pvproperty(value=args.height, name="cam1:SizeY", alarm_group="sy")
        acquire = pvproperty(value="Acquire", dtype=ChannelType.ENUM, enum_strings=["Done", "Acquire"],
                             name="cam1:Acquire", alarm_group="acq")
        size0 = pvproperty(value=args.width, name="cam1:ArraySize0_RBV", read_only=True, alarm_group="s0")
        size1 = pvproperty(value=args.height, name="cam1:ArraySize1_RBV", read_only=True, alarm_group="s1")
        cam_counter = pvproperty(value=0, name="cam1:ArrayCounter_RBV", read_only=True, alarm_group="cc")
        data_type = pvproperty(value="UInt16", dtype=ChannelType.ENUM, read_only=True, alarm_group="dt",
                               enum_strings=["Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32",
                                             "Int64", "UInt64", "Float32", "Float64"],
                               name="cam1:DataType_RBV")
        color_mode = pvproperty(value="Mono", dtype=ChannelType.ENUM, enum_strings=["Mono", "RGB1"],
                                name="cam1:ColorMode_RBV", read_only=True, alarm_group="cm")
        array_data = image_pv("image1:ArrayData")
        counter = pvproperty(value=0, name="image1:ArrayCounter_RBV", read_only=True, alarm_group="ic")
        image_size0 = pvproperty(value=args.width, name="image1:ArraySize0_RBV", read_only=True,
                                 alarm_group="is0")
        image_size1 = pvproperty(value=args.height, name="image1:ArraySize1_RBV", read_only=True,
                                 alarm_group="is1")

        @size_x.putter
        async def size_x(self, instance, value):
            if not 0 < value * self.size_y.value <= max_pixels:
                raise ValueError(f"SizeX {value} too large")

        @size_y.putter
        async def size_y(self, instance, value):
            if not 0 < value * self.size_x.value <= max_pixels:
                raise ValueError(f"SizeY {value} too large")

        async def _post_counters(self, n: int, stamp: float) -> None:
            if args.unstamped:
                stamp = time.time() + 0.0005
            await self.cam_counter.write(n, timestamp=stamp)
            await self.counter.write(n, timestamp=stamp)

        @array_data.startup
        async def array_data(self, instance, async_lib):
            n, next_due = 0, time.monotonic()
            while True:
                next_due = await pace(async_lib, next_due)
                if self.acquire.value != "Acquire":
                    continue
                n += 1
                stamp = time.time()
                w, h = self.size_x.value, self.size_y.value
                if (w, h) != (self.size0.value, self.size1.value):
                    for pv, v in ((self.size0, w), (self.size1, h), (self.image_size0, w),
                                  (self.image_size1, h)):
                        await pv.write(v, timestamp=stamp)
                frame = pattern(n, w, h).view(np.int16).ravel()
                if args.counter_first:
                    await self._post_counters(n, stamp)
                await instance.write(frame, timestamp=stamp)
                if not args.counter_first:
                    await self._post_counters(n, stamp)

    cls = CamServerCamera if args.convention == "camserver" else AreaDetectorCamera
    return cls(prefix=f"{args.prefix}:")


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.port:
        os.environ["EPICS_CA_SERVER_PORT"] = os.environ["EPICS_CAS_SERVER_PORT"] = str(args.port)
    from caproto.server import run

    group = _build(args)

    async def ready(async_lib) -> None:
        print("READY", flush=True)

    print(f"serving {len(group.pvdb)} PVs: {' '.join(group.pvdb)}", file=sys.stderr, flush=True)
    run(group.pvdb, startup_hook=ready)


if __name__ == "__main__":
    main()
