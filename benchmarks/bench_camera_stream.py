"""Camera-stream throughput: camioc's CameraStreamPublisher vs raw pyzmq zero-copy, same run.

What is measured (loopback TCP, sender and receiver in separate spawned processes):

* ``raw``      raw pyzmq: ``[small JSON header, frame]`` zero-copy (``copy=False``) -> PULL
               ``recv_multipart(copy=False)``. The ceiling of the machine and of libzmq.
* ``camera``   ``CameraStreamPublisher`` (the 6 cam_server channels, 14 parts) -> the same raw
               pyzmq zero-copy PULL receiver. **This is the figure compared with raw.**
* ``camioc``   ``CameraStreamPublisher`` -> camioc ``BsreadReceiver`` (decodes every message, touches
               the image).
* ``psi``      ``CameraStreamPublisher`` -> psi-bsread ``Source`` (defaults: copy=True), touching
               ``.value`` of the image: what a cam_server client gets.
* ``pub``      ``CameraStreamPublisher`` in PUB mode, free-running -> raw SUB: what a single
               subscriber receives when the publisher is not paced (informative; PUB drops).

The lossless figures use PUSH/PULL with a blocking sender, so "frames/s" is what one consumer
actually receives with nothing dropped; the PUB figure counts arrivals and reports the pulse-id
gaps. Each measurement runs ``--duration`` seconds after a short warm-up; the frames are
pre-generated camera-like uint16 images (Poisson background + Gaussian spot) cycled by the
sender. MB/s counts image bytes (10^6 B). The cases run interleaved ``--repeat`` times and the
median is printed; the machine may be shared, so every run also measures the CPU other processes
used meanwhile ("foreign", in cores) and a disturbed run is retried (``--retries``,
``--max-foreign``). Results are printed; nothing is asserted (not a test).

    /tmp/venv/bin/python benchmarks/bench_camera_stream.py [--sizes 1024 2048] [--duration 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

HWM = 10  # frames buffered per side; 8 MiB frames make large HWMs a memory hog
WARMUP_S = 0.4
N_FRAMES = 4


@dataclass
class Result:
    """One measurement as seen by the receiver."""

    frames: int
    seconds: float
    pixel_bytes: int
    recv_cpu: float  # cores
    send_cpu: float  # cores
    foreign: float  # cores used by other processes on the machine during the window
    gaps: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def mbps(self) -> float:
        return self.pixel_bytes / self.seconds / 1e6


def make_frames(size: int, count: int = N_FRAMES) -> list[Any]:
    """Camera-like 12-bit frames: Poisson background ~100 counts plus a Gaussian spot."""
    import numpy as np

    rng = np.random.default_rng(size)
    yy, xx = np.mgrid[0:size, 0:size]
    frames = []
    for i in range(count):
        cx, cy, sigma = size * (0.4 + 0.05 * i), size * 0.5, size / 20
        spot = 1900 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        frames.append(np.clip(rng.poisson(100, (size, size)) + spot, 0, 4095).astype(np.uint16))
    return frames


# ----------------------------------------------------------------------------- sender process
def sender_main(kind: str, mode: str, size: int, port_q: Any, stop: Any) -> None:
    """Send pre-generated frames as fast as possible until ``stop`` is set."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import zmq

    frames = make_frames(size)
    sent = 0
    if kind == "raw":
        ctx = zmq.Context()  # terminated below: zero-copy buffers must be released before exit
        sock = ctx.socket(zmq.PUSH if mode == "PUSH" else zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, HWM)
        sock.setsockopt(zmq.LINGER, 200)  # LINGER 0 + a peer leaving mid-message can abort libzmq
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        port_q.put(port)
        while not stop.is_set():
            # Same send discipline as BsreadSender: only the first part may fail (the receiver
            # may be gone), the rest of an accepted message never blocks.
            try:
                sock.send(b'{"pulse_id":%d}' % sent, zmq.SNDMORE | zmq.NOBLOCK)
            except zmq.Again:
                sock.poll(100, zmq.POLLOUT)
                continue
            sock.send(frames[sent % N_FRAMES], 0, copy=False)
            sent += 1
        sock.close()
        ctx.term()
    else:
        from camioc.streams.camera_stream import CameraStreamPublisher

        x_axis = np.arange(size, dtype=np.float32)
        y_axis = np.arange(size, dtype=np.float32)
        pub = CameraStreamPublisher(port=None, queue_size=HWM, mode=mode, block=True, send_timeout=0.1)
        pub.open()
        port_q.put(pub.port)
        t0 = time.time()
        while not stop.is_set():
            frame = frames[sent % N_FRAMES]
            if pub.publish(frame, x_axis, y_axis, pulse_id=sent, timestamp=t0 + sent * 1e-3):
                sent += 1
        pub.close()


# ----------------------------------------------------------------------------- receiver process
def receiver_main(
    kind: str, mode: str, port: int, duration: float, sender_pid: int, stop: Any, result_q: Any
) -> None:
    """Receive for WARMUP_S + ``duration`` seconds and report what arrived in the timed window."""
    import json

    import psutil
    import zmq

    address = f"tcp://127.0.0.1:{port}"
    frames = pixel_bytes = gaps = 0
    last_pid = None

    if kind == "raw":
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.PULL if mode == "PUSH" else zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, HWM)
        sock.setsockopt(zmq.LINGER, 0)
        if mode == "PUB":
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(address)
        image_index = None

        def receive() -> tuple[int, int] | None:
            nonlocal image_index
            if not sock.poll(1000):
                return None
            parts = sock.recv_multipart(copy=False)
            if image_index is None:  # raw: part 1; bsread camera stream: the image value part 8
                image_index = 1 if len(parts) == 2 else 8
            pid = json.loads(parts[0].bytes)["pulse_id"]
            return pid, len(parts[image_index].buffer)

        close = sock.close
    elif kind == "camioc":
        from camioc.streams.bsread import BsreadReceiver

        receiver = BsreadReceiver(address, mode="PULL" if mode == "PUSH" else "SUB", queue_size=HWM)
        receiver.connect()

        def receive() -> tuple[int, int] | None:
            msg = receiver.receive(1.0)
            if msg is None:
                return None
            return msg.pulse_id, msg.data["image"].nbytes

        close = receiver.close
    else:
        import bsread

        source = bsread.Source(host="127.0.0.1", port=port, receive_timeout=1000, queue_size=HWM,
                               mode=bsread.PULL if mode == "PUSH" else bsread.SUB)
        source.connect()

        def receive() -> tuple[int, int] | None:
            msg = source.receive()
            if msg is None:
                return None
            return msg.data.pulse_id, msg.data.data["image"].value.nbytes

        close = source.disconnect

    # warm-up: the connection, first header decode, caches
    warm_end = time.monotonic() + WARMUP_S
    while time.monotonic() < warm_end:
        got = receive()
        if got is not None:
            last_pid = got[0]
    sender_proc = psutil.Process(sender_pid)

    def busy() -> tuple[float, float, float]:
        """(machine busy CPU-seconds, sender CPU-seconds, own CPU-seconds)."""
        total = psutil.cpu_times()
        mine = sender_proc.cpu_times()
        return (total.user + total.system + total.nice + total.irq + total.softirq,
                mine.user + mine.system, time.process_time())

    machine0, send0, cpu0 = busy()
    t0 = time.monotonic()
    end = t0 + duration
    while time.monotonic() < end:
        got = receive()
        if got is None:
            continue
        pid, nbytes = got
        if last_pid is not None and pid != last_pid + 1:
            gaps += max(0, pid - last_pid - 1)
        last_pid = pid
        frames += 1
        pixel_bytes += nbytes
    machine1, send1, cpu1 = busy()
    seconds = time.monotonic() - t0
    cpu, send_cpu = cpu1 - cpu0, send1 - send0
    foreign = max(0.0, machine1 - machine0 - cpu - send_cpu)
    stop.set()
    close()
    result_q.put((frames, seconds, pixel_bytes, cpu, send_cpu, foreign, gaps))


# ----------------------------------------------------------------------------- driver
def measure(ctx: Any, sender_kind: str, receiver_kind: str, mode: str, size: int, duration: float) -> Result:
    """Run one sender/receiver pair in two spawned processes."""
    port_q, result_q = ctx.Queue(), ctx.Queue()
    stop = ctx.Event()
    sender = ctx.Process(target=sender_main, args=(sender_kind, mode, size, port_q, stop), daemon=True)
    sender.start()
    port = port_q.get(timeout=60)
    receiver = ctx.Process(target=receiver_main, daemon=True,
                           args=(receiver_kind, mode, port, duration, sender.pid, stop, result_q))
    receiver.start()
    frames, seconds, pixel_bytes, recv_cpu, send_cpu, foreign, gaps = result_q.get(timeout=duration + 60)
    receiver.join(10)
    sender.join(10)
    for role, proc in (("receiver", receiver), ("sender", sender)):
        if proc.is_alive():
            print(f"  [{role} of {sender_kind}->{receiver_kind} {mode} did not exit; terminated]")
            proc.terminate()
        elif proc.exitcode:
            print(f"  [{role} of {sender_kind}->{receiver_kind} {mode} exited with {proc.exitcode}]")
    per_s = 1.0 / seconds
    return Result(frames, seconds, pixel_bytes, recv_cpu * per_s, send_cpu * per_s, foreign * per_s, gaps)


CASES = [  # (label, sender kind, receiver kind, mode)
    ("raw pyzmq zero-copy (baseline)", "raw", "raw", "PUSH"),
    ("camera publisher -> pyzmq zero-copy", "camera", "raw", "PUSH"),
    ("camera publisher -> camioc BsreadReceiver", "camera", "camioc", "PUSH"),
    ("camera publisher -> psi-bsread Source", "camera", "psi", "PUSH"),
    ("camera publisher PUB free-running -> SUB", "camera", "raw", "PUB"),
]


def measure_quiet(ctx: Any, case: tuple[str, str, str, str], size: int, args: argparse.Namespace) -> Result:
    """Measure, retrying while other processes used more than ``--max-foreign`` cores meanwhile.

    This VM is shared; a run disturbed by foreign load is not representative. Keeps the least
    disturbed run if every attempt was disturbed.
    """
    _, sender_kind, receiver_kind, mode = case
    attempts = []
    for _ in range(1 + args.retries):
        result = measure(ctx, sender_kind, receiver_kind, mode, size, args.duration)
        attempts.append(result)
        if result.foreign <= args.max_foreign:
            break
    return min(attempts, key=lambda r: r.foreign)


def main() -> None:
    """Parse arguments, run every case per image size (interleaved repeats), print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved runs per case; the median is printed")
    parser.add_argument("--retries", type=int, default=2, help="re-runs of a case disturbed by foreign load")
    parser.add_argument("--max-foreign", type=float, default=0.15, help="foreign cores tolerated in a run")
    parser.add_argument("--cases", nargs="+", type=int, help="indices into the case list (default: all)")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    cases = [CASES[i] for i in args.cases] if args.cases else CASES
    print(f"bsread camera stream, loopback TCP, {os.cpu_count()} CPUs, {args.duration:.1f} s per run, "
          f"median of {args.repeat}; 'foreign' = cores used by other processes during the run")
    for size in args.sizes:
        runs: dict[str, list[Result]] = {case[0]: [] for case in cases}
        for _ in range(args.repeat):  # interleaved, so slow drifts of machine load hit every case alike
            for case in cases:
                runs[case[0]].append(measure_quiet(ctx, case, size, args))
        print(f"\n{size}x{size} uint16 ({size * size * 2 / 2**20:.0f} MiB/frame)")
        print(f"  {'case':44s} {'mode':5s} {'frames/s':>9s} {'MB/s':>7s} {'recv':>5s} {'send':>5s} "
              f"{'foreign':>7s} {'gaps':>6s}")
        fps: dict[str, float] = {}
        for label, _, _, mode in cases:
            results = sorted(runs[label], key=lambda r: r.fps)
            mid = results[len(results) // 2]
            fps[label] = statistics.median(r.fps for r in results)
            print(f"  {label:44s} {mode:5s} {fps[label]:9.0f} {mid.mbps:7.0f} {mid.recv_cpu:5.2f} "
                  f"{mid.send_cpu:5.2f} {mid.foreign:7.2f} {mid.gaps:6d}")
        raw = fps.get(CASES[0][0])
        for label, name in ((CASES[1][0], "camera publisher"), (CASES[2][0], "camioc receiver"),
                            (CASES[3][0], "psi-bsread Source")):
            if raw and label in fps:
                target = " (target >= 80 %)" if label == CASES[1][0] else ""
                print(f"  ratio {name}/raw = {fps[label] / raw:.0%}{target}")


if __name__ == "__main__":
    main()
