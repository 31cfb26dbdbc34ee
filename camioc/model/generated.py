"""Generated files (``db/``, ``opi/``): write them, find stale ones, and the generators' command line.

Both generators produce ``{file name: text}`` from the PV table; what to do with that mapping is
the same for both, so it lives here once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

Generate = Callable[[], Mapping[str, str]]


def write_files(files: Mapping[str, str], output: Path) -> list[Path]:
    """Write every generated file into ``output`` (created if missing)."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = output / name
        path.write_text(text)
        written.append(path)
    return written


def stale_files(files: Mapping[str, str], output: Path) -> list[str]:
    """Names of generated files that are missing from ``output`` or differ from ``files``."""
    return [name for name, text in files.items()
            if not (output / name).is_file() or (output / name).read_text() != text]


def generator_main(argv: list[str] | None, *, prog: str, description: str, generate: Generate,
                   default_output: Path) -> int:
    """``python -m <generator> [--output DIR] [--check]``: regenerate, or check (exit 1 if stale)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--output", type=Path, default=default_output, help=f"folder (default {default_output})")
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale_files(generate(), args.output)
        for name in outdated:
            print(f"stale: {args.output / name}", file=sys.stderr)
        return 1 if outdated else 0
    for path in write_files(generate(), args.output):
        print(path)
    return 0


__all__ = ["generator_main", "stale_files", "write_files"]
