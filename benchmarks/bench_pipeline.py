"""End-to-end pipeline throughput: camera -> pipeline -> one subscriber, against the core's rate.

For 1024x1024 and 2048x2048 uint16 frames this measures, in one run:

1. the processing core's own rate: ``ImagePipeline.process`` with the default config on one frame,
   repeated (frames/s), in this process;
2. the camera-only rate: a simulation camera (pre-generated static beam frames) paced at 1.25x the
   core's rate, read directly by one subscriber (pyzmq, zero-copy) — the transport ceiling of one
   hop on this machine;
3. the end-to-end rate: the same camera feeding a processing pipeline (its own worker process);
   the subscriber counts what the pipeline publishes (two hops: camera -> pipeline -> client);
4. a loss check at 100 Hz for 1024x1024: camera paced at 100 Hz, pipeline output counted for a few
   seconds, pulse-id gaps reported (target: none).

Prints frames/s and the ratios end-to-end / core (target >= 0.8) and end-to-end / camera-only.
On a 2-core machine every process competes for the same two cores, and each 2 or 8 MB frame is
copied by the kernel on every loopback hop: when the core needs well under a millisecond per
frame, the end-to-end rate is bounded by the transport, not by processing. Not a test: figures only.
Run: ``python benchmarks/bench_pipeline.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from camioc.config.store import ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.processing import ImagePipeline, warm_up


def core_rate(size: int, seconds: float) -> float:
    """Frames/s of the processing core alone on a simulated beam frame."""
    from camioc.config.camera import CameraConfig
    from camioc.sources.registry import create_source

    config = CameraConfig.from_dict({"name": "bench", "source": "bench", "source_type": "simulation",
                                     "size_x": size, "size_y": size, "image_type": "static_beam",
                                     "frame_rate": 1000.0})
    with create_source(config) as source:
        source.connect(5.0)
        frame = source.read(5.0)
    assert frame is not None
    image = np.ascontiguousarray(frame.image)
    x_axis = np.arange(size, dtype=np.float32)
    y_axis = np.arange(size, dtype=np.float32)
    pipe = ImagePipeline({"camera_name": "bench", "pipeline_type": "processing", "name": "bench"})
    for _ in range(3):
        pipe.process(image, 0, time.time(), x_axis, y_axis)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        pipe.process(image, count, time.time(), x_axis, y_axis)
        count += 1
    return count / (time.perf_counter() - start)


def count_stream(address: str, seconds: float) -> tuple[float, int, int]:
    """(messages/s, messages, pulse-id gaps) received from a bsread PUB stream with raw pyzmq."""
    context = zmq.Context.instance()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.setsockopt(zmq.RCVHWM, 100)
    socket.connect(address)
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    # settle: skip the first messages (slow joiner, warm-up)
    deadline = time.monotonic() + 10
    received = 0
    while received < 5 and time.monotonic() < deadline:
        if poller.poll(200):
            socket.recv_multipart(copy=False)
            received += 1
    count, gaps, last = 0, 0, None
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if not poller.poll(100):
            continue
        parts = socket.recv_multipart(copy=False)
        pulse_id = json.loads(bytes(parts[0].buffer))["pulse_id"]
        if last is not None and pulse_id != last + 1:
            gaps += max(0, pulse_id - last - 1)
        last = pulse_id
        count += 1
    elapsed = time.perf_counter() - start
    socket.close(linger=0)
    return count / elapsed, count, gaps


async def end_to_end(size: int, camera_rate: float, seconds: float, with_pipeline: bool = True
                     ) -> tuple[float, int, int]:
    """Rate a subscriber gets from the pipeline (or, without it, straight from the camera)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "cams").mkdir()
        (base / "pipes").mkdir()
        (base / "cams" / "bench.json").write_text(json.dumps({
            "name": "bench", "source": "bench", "source_type": "simulation", "size_x": size, "size_y": size,
            "dtype": "uint16", "image_type": "static_beam", "frame_rate": camera_rate,
            "simulate_pulse_id": False, "no_client_timeout": 0}))
        start_port = random.randrange(40000, 44000, 200)
        cameras = CameraManager(ConfigStore(base / "cams"), hostname="127.0.0.1",
                                port_range=(start_port, start_port + 100), log_level=logging.WARNING)
        pipelines = PipelineManager(ConfigStore(base / "pipes"), cameras, BackgroundStore(base / "bg"),
                                    hostname="127.0.0.1", port_range=(start_port + 100, start_port + 200),
                                    log_level=logging.WARNING)
        cameras.set_image_publishing("bench", False, 1.0)
        try:
            if not with_pipeline:
                return await asyncio.to_thread(count_stream, await cameras.get_stream("bench"), seconds)
            instance_id, stream, _ = await pipelines.create_instance(
                {"camera_name": "bench", "queue_size": 100}, instance_id="bench_pipe")
            pipelines.set_image_publishing(instance_id, False, 1.0)
            return await asyncio.to_thread(count_stream, stream, seconds)
        finally:
            await pipelines.close()
            await cameras.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warm_up()
    print(f"{'frame':>11} | {'core fps':>9} | {'camera Hz':>9} | {'camera-only fps':>15} | "
          f"{'end-to-end fps':>14} | {'e2e/core':>8} | {'e2e/camera-only':>15}")
    print("-" * 104)
    for size in (1024, 2048):
        rate = core_rate(size, args.seconds)
        camera_rate = rate * 1.25
        direct, _count, _gaps = asyncio.run(end_to_end(size, camera_rate, args.seconds, with_pipeline=False))
        e2e, _count, _gaps = asyncio.run(end_to_end(size, camera_rate, args.seconds))
        print(f"{size}x{size:<6} | {rate:9.1f} | {camera_rate:9.1f} | {direct:15.1f} | {e2e:14.1f} | "
              f"{e2e / rate:8.2f} | {e2e / direct:15.2f}")
    e2e, count, gaps = asyncio.run(end_to_end(1024, 100.0, args.seconds))
    print(f"\n1024x1024 at 100 Hz: {e2e:.1f} frames/s received, {count} frames, {gaps} pulse-id gaps "
          f"({'no loss' if gaps == 0 else 'LOSS'})")


if __name__ == "__main__":
    main()
