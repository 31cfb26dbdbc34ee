"""PV Access image rate: what a p4p client receives of ``Pva1:Image`` against the bsread stream, same run.

For 1024x1024 and 2048x2048 uint16 frames, a real camioc process (``python -m camioc``, free ports)
serves a simulation camera (pre-generated static beam frames, paced at ``--rate-1024`` /
``--rate-2048`` Hz). ``MinCallbackTime`` is put to 0 over PVA (an image snapshot for every frame),
then, for ``--seconds``, in this process at the same time:

* a raw pyzmq SUB on the camera's bsread stream counts frames (pulse ids): the **stream rate**;
* a p4p ``Context('pva')`` monitor on ``<camera>:image1:Pva1:Image`` counts distinct pulse ids
  (``uniqueId``): the **PVA rate**. The ratio PVA / stream is the figure (goal >= 0.8).

The CPU the camioc control process spends (psutil, in cores) is measured in the same window, once
with the PVA client subscribed and once (before) with snapshots at full rate but no PVA client, so
the difference is what serving the NTNDArray costs. Finally, in this process, what a post costs:
``ImagePublisher.post_frame`` on the loop (the loop's share) and the wrap + post of the worker
thread (p4p copies the pixels once), per frame.

On a 2-core machine the camera worker, the control process, this client and the kernel's loopback
copies share the cores; the figures say what one machine does, not what a network does.
Not a test: figures only. Run: ``python benchmarks/pva_rate.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import zmq

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.server import CamiocServer, start_camioc, stop_camioc  # noqa: E402


def _camera_config(size: int, rate: float) -> dict[str, Any]:
    return {"name": "bench", "source": "bench", "source_type": "simulation", "size_x": size, "size_y": size,
            "dtype": "uint16", "image_type": "static_beam", "frame_rate": rate, "simulate_pulse_id": True,
            "no_client_timeout": 0}


class StreamCounter(threading.Thread):
    """Counts the frames of a bsread PUB stream (raw pyzmq, header only) while ``counting`` is set."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.counting = threading.Event()
        self.stop = threading.Event()
        self.pulses: set[int] = set()

    def run(self) -> None:
        socket = zmq.Context.instance().socket(zmq.SUB)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        socket.setsockopt(zmq.RCVHWM, 20)
        socket.connect(self.address)
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        while not self.stop.is_set():
            if not poller.poll(100):
                continue
            parts = socket.recv_multipart(copy=False)
            if self.counting.is_set():
                self.pulses.add(int(json.loads(bytes(parts[0].buffer))["pulse_id"]))
        socket.close(linger=0)


class PvaCounter:
    """p4p monitor callback: distinct pulse ids of the NTNDArrays received while counting."""

    def __init__(self) -> None:
        self.counting = False
        self.pulses: set[int] = set()
        self.shapes: set[tuple[int, ...]] = set()
        self.dtypes: set[str] = set()

    def __call__(self, value: Any) -> None:
        if isinstance(value, Exception) or not self.counting or value.size == 0:
            return
        self.pulses.add(int(value.attrib["PulseId"]))
        self.shapes.add(tuple(value.shape))
        self.dtypes.add(str(value.dtype))


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _window(process: psutil.Process, seconds: float, counters: list[Any]) -> float:
    """Count for ``seconds``; the control process's CPU meanwhile, in cores."""
    for counter in counters:
        if isinstance(counter, StreamCounter):
            counter.counting.set()
        else:
            counter.counting = True
    cpu0, t0 = _cpu(process), time.perf_counter()
    time.sleep(seconds)
    cpu1, t1 = _cpu(process), time.perf_counter()
    for counter in counters:
        if isinstance(counter, StreamCounter):
            counter.counting.clear()
        else:
            counter.counting = False
    return (cpu1 - cpu0) / (t1 - t0)


def measure(size: int, rate: float, seconds: float, folder: Path) -> dict[str, Any]:
    from cam_server_client import CamClient
    from p4p.client.thread import Context

    base = folder / f"configs{size}"
    for sub in ("camera_config", "pipeline_config", "background_config", "user_scripts"):
        (base / sub).mkdir(parents=True)
    (base / "camera_config" / "bench.json").write_text(json.dumps(_camera_config(size, rate)))
    server: CamiocServer = start_camioc(base, folder / f"camioc{size}.log")
    try:
        control = psutil.Process(server.proc.pid)
        pva = Context("pva", conf=server.pva_conf(), useenv=False)
        p = server.prefix
        pva.put(f"{p}bench:image1:MinCallbackTime", 0.0, timeout=10)
        address = CamClient(server.camera_url).get_instance_stream("bench")
        stream = StreamCounter(address)
        stream.start()
        time.sleep(2.0)  # warm-up: the worker runs, the first snapshots arrived
        cpu_without = _window(control, seconds, [])
        images = PvaCounter()
        subscription = pva.monitor(f"{p}bench:image1:Pva1:Image", images)
        time.sleep(1.0)
        stream.pulses.clear()
        cpu_with = _window(control, seconds, [stream, images])
        subscription.close()
        stream.stop.set()
        stream.join(5)
        pva.close()
        return {"size": size, "camera_hz": rate, "stream_fps": len(stream.pulses) / seconds,
                "pva_fps": len(images.pulses) / seconds, "cpu_without": cpu_without, "cpu_with": cpu_with,
                "shapes": images.shapes, "dtypes": images.dtypes}
    finally:
        stop_camioc(server)


async def post_cost(size: int, frames: int = 30) -> tuple[float, float]:
    """(ms the loop spends in post_frame, ms the worker thread spends per wrap + post)."""
    from concurrent.futures import ThreadPoolExecutor

    from p4p.server import Server, StaticProvider

    from camioc.model.camera import ImageFrame
    from camioc.pva.images import ImagePublisher, ndarray_value

    image = np.random.default_rng(0).integers(0, 4096, (size, size), dtype=np.uint16)
    image.flags.writeable = False
    executor = ThreadPoolExecutor(max_workers=1)
    publisher = ImagePublisher(executor)
    provider = StaticProvider("bench")
    provider.add("BENCH:Pva1:Image", publisher.pv)
    server = Server(providers=[provider], isolate=True)
    try:
        loop_s = 0.0
        for index in range(frames):
            frame = ImageFrame(image, index, time.time(), index)
            t0 = time.perf_counter()
            publisher.post_frame(frame)
            loop_s += time.perf_counter() - t0
            await asyncio.sleep(0.05)
        thread_s = 0.0
        for index in range(frames):
            t0 = time.perf_counter()
            publisher.pv.post(ndarray_value(publisher.nt, ImageFrame(image, index, time.time(), index)))
            thread_s += time.perf_counter() - t0
        return loop_s / frames * 1e3, thread_s / frames * 1e3
    finally:
        publisher.close()
        server.stop()
        executor.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate-1024", type=float, default=50.0, help="camera frame rate at 1024x1024 (Hz)")
    parser.add_argument("--rate-2048", type=float, default=15.0, help="camera frame rate at 2048x2048 (Hz)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pva_rate."))
    try:
        rows = [measure(1024, args.rate_1024, args.seconds, folder),
                measure(2048, args.rate_2048, args.seconds, folder)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{'frame':>11} | {'camera Hz':>9} | {'bsread fps':>10} | {'PVA fps':>8} | {'PVA/bsread':>10} | "
          f"{'control CPU, no PVA client':>26} | {'with PVA client':>15}")
    print("-" * 110)
    for row in rows:
        ratio = row["pva_fps"] / row["stream_fps"] if row["stream_fps"] else float("nan")
        print(f"{row['size']}x{row['size']:<6} | {row['camera_hz']:9.1f} | {row['stream_fps']:10.1f} | "
              f"{row['pva_fps']:8.1f} | {ratio:10.2f} | {row['cpu_without']:20.2f} cores | "
              f"{row['cpu_with']:9.2f} cores")
        print(f"{'':>11}   PVA images: shapes {sorted(row['shapes'])}, dtypes {sorted(row['dtypes'])}")
    for size in (1024, 2048):
        loop_ms, thread_ms = asyncio.run(post_cost(size))
        print(f"post of a {size}x{size} uint16 frame: {loop_ms:.3f} ms on the loop (post_frame), "
              f"{thread_ms:.2f} ms in the PVA image thread (NTNDArray wrap + pvxs post)")


if __name__ == "__main__":
    main()
