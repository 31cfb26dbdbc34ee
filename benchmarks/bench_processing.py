"""Per-frame cost of the default pipeline function, as a multiple of one frame copy, same run.

For 1280×960, 2048×2048 and 2560×2160 uint16 frames (camera-like: 12-bit Poisson background of
~100 counts plus a slightly tilted Gaussian beam that moves from frame to frame) it measures
``ImagePipeline.process`` — pre-processing plus cam_server's default function, everything a
pipeline worker does per frame except the network — in three configurations:

* ``a``  no options (profiles, min/max, FWHM, centroids, two Gaussian fits);
* ``b``  background subtraction + threshold + region of interest;
* ``c``  good region + 5 slices (four profile fits and five slice fits).

Next to each it measures ``numpy.copy`` of the same frame, interleaved with the processing
calls so that load from other processes on the machine hits both alike; the ratio of the medians
is the figure (targets for 2048² and 2560×2160: a ≤ 5×, c ≤ 10×). ``peak MB`` is the largest
extra memory one ``process`` call allocates (tracemalloc sees numpy's allocations), also as a
multiple of the frame size. Runs single-threaded (NUMBA_NUM_THREADS=1). Numbers are printed;
nothing is asserted (not a test).

    /tmp/venv/bin/python benchmarks/bench_processing.py [--sizes 1280x960 2048x2048 2560x2160]
                                                        [--frames 40]
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from camioc.processing import ImagePipeline, warm_up  # noqa: E402

N_DISTINCT_FRAMES = 4
CASES: dict[str, dict[str, Any]] = {
    "a": {},
    "b": {
        "image_background_enable": True,
        "image_background": "bench",
        "image_threshold": 40,
        "image_region_of_interest": None,  # filled per size: the central 3/4 of the frame
    },
    "c": {"image_good_region": {"threshold": 0.3, "gfscale": 1.8}, "image_slices": {"number_of_slices": 5}},
}
TARGETS = {"a": 5.0, "c": 10.0}


def make_frames(width: int, height: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Camera-like frames and a background frame (12-bit, Poisson noise)."""
    rng = np.random.default_rng(width * height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = []
    for i in range(N_DISTINCT_FRAMES):
        cx, cy = width * (0.45 + 0.03 * i), height * (0.5 - 0.02 * i)
        sx, sy = width / 25, height / 30
        u, v = (xx - cx), (yy - cy)
        beam = 3000 * np.exp(-(u**2) / (2 * sx**2) - v**2 / (2 * sy**2) + 0.3 * u * v / (sx * sy))
        frames.append(np.clip(rng.poisson(100, (height, width)) + beam, 0, 4095).astype(np.uint16))
    background = rng.poisson(100, (height, width)).astype(np.uint16)
    return frames, background


def config_for(case: str, width: int, height: int) -> dict[str, Any]:
    config = {key: (dict(value) if isinstance(value, dict) else value) for key, value in CASES[case].items()}
    if "image_region_of_interest" in config:
        config["image_region_of_interest"] = [width // 8, 3 * width // 4, height // 8, 3 * height // 4]
    return config


def measure(width: int, height: int, case: str, n_frames: int) -> dict[str, float]:
    frames, background = make_frames(width, height)
    x_axis = np.arange(width, dtype=np.float32)
    y_axis = np.arange(height, dtype=np.float32)
    pipeline = ImagePipeline(config_for(case, width, height), background_loader=lambda _id: background)
    for i in range(3):  # first touches (background conversion cache, page faults)
        pipeline.process(frames[i % N_DISTINCT_FRAMES], i, 0.0, x_axis, y_axis)
    copy_times: list[float] = []
    process_times: list[float] = []
    for i in range(n_frames):
        frame = frames[i % N_DISTINCT_FRAMES]
        t0 = time.perf_counter()
        np.copy(frame)
        t1 = time.perf_counter()
        out = pipeline.process(frame, i, 0.0, x_axis, y_axis)
        t2 = time.perf_counter()
        assert out is not None and "x_fit_mean" in out
        copy_times.append(t1 - t0)
        process_times.append(t2 - t1)
    tracemalloc.start()
    peak = 0
    for i in range(4):
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = pipeline.process(frames[i % N_DISTINCT_FRAMES], i, 0.0, x_axis, y_axis)
        peak = max(peak, tracemalloc.get_traced_memory()[1] - before)
        del out
    tracemalloc.stop()
    copy_ms = statistics.median(copy_times) * 1e3
    process_ms = statistics.median(process_times) * 1e3
    return {
        "copy_ms": copy_ms,
        "process_ms": process_ms,
        "process_min_ms": min(process_times) * 1e3,
        "ratio": process_ms / copy_ms,
        "peak_mb": peak / 1e6,
        "peak_frames": peak / frames[0].nbytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["1280x960", "2048x2048", "2560x2160"])
    parser.add_argument("--frames", type=int, default=40, help="timed frames per case")
    args = parser.parse_args()
    compile_s = warm_up((np.uint16,))
    print(f"warm-up (numba compile or cache load): {compile_s:.2f} s; load average {os.getloadavg()[0]:.2f}")
    header = (
        f"{'frame':>10} {'case':>4} {'copy ms':>8} {'process ms':>11} {'min ms':>7} "
        f"{'ratio':>6} {'target':>6} {'peak MB':>8} {'peak/frame':>10}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        for case in CASES:
            r = measure(width, height, case, args.frames)
            target = TARGETS.get(case)
            target_text = f"{target:.0f}x" if target and width * height >= 2048 * 2048 else "-"
            print(
                f"{size:>10} {case:>4} {r['copy_ms']:8.3f} {r['process_ms']:11.3f} {r['process_min_ms']:7.3f} "
                f"{r['ratio']:5.1f}x {target_text:>6} {r['peak_mb']:8.1f} {r['peak_frames']:9.2f}x"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other processes share these 2 cores)")


if __name__ == "__main__":
    main()
