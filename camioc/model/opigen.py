"""Generate camioc's screens (``opi/*.bob`` for Phoebus, ``opi/*.ui`` for PyDM) from one description.

:mod:`camioc.model.screens` describes each screen once (service overview, camera, pipeline), naming
PVs by their device-model attribute; :mod:`camioc.model.screens_bob` and
:mod:`camioc.model.screens_pydm` render it. The overview lists the cameras and saved pipelines of a
config folder (``--config-base``, default the shipped ``configs/``); a site regenerates it for its
own: ``python -m camioc.model.opigen --config-base /etc/camioc --output /opt/camioc/opi``.

Macros follow ADCore: ``P`` (service prefix) and ``R`` (``<cam>:`` for a camera, ``<id>:`` for a
pipeline), given by the caller, never defined in the files. Regenerate with
``python -m camioc.model.opigen`` (``--check`` fails if the files are stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from camioc.config.store import ConfigLayout, ConfigStore
from camioc.model import screens_bob, screens_pydm
from camioc.model.generated import stale_files, write_files
from camioc.model.screens import Screen, screens

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO / "opi"
DEFAULT_CONFIG_BASE = REPO / "configs"
#: The README of ``opi/`` is written by hand; every other file there is generated.
RENDERERS = {".bob": screens_bob.render, ".ui": screens_pydm.render}


def configured_screens(config_base: Path = DEFAULT_CONFIG_BASE) -> list[Screen]:
    """The screens, the overview listing the cameras and saved pipelines under ``config_base``."""
    layout = ConfigLayout(config_base)
    return screens(
        ConfigStore(layout.camera_config, "camera").names(), ConfigStore(layout.pipeline_config, "pipeline").names()
    )


def generate(config_base: Path = DEFAULT_CONFIG_BASE) -> dict[str, str]:
    """File name -> content of every generated ``opi/`` file."""
    return {
        f"{screen.stem}{suffix}": render(screen)
        for screen in configured_screens(config_base)
        for suffix, render in RENDERERS.items()
    }


def write(output: Path = DEFAULT_OUTPUT, config_base: Path = DEFAULT_CONFIG_BASE) -> list[Path]:
    """Regenerate every screen into ``output``."""
    return write_files(generate(config_base), output)


def stale(output: Path = DEFAULT_OUTPUT, config_base: Path = DEFAULT_CONFIG_BASE) -> list[str]:
    """Names of generated files that are missing or differ from what would be generated."""
    return stale_files(generate(config_base), output)


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None  # this module's docstring
    parser = argparse.ArgumentParser(prog="python -m camioc.model.opigen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"folder (default {DEFAULT_OUTPUT})")
    parser.add_argument(
        "--config-base",
        type=Path,
        default=DEFAULT_CONFIG_BASE,
        help=f"config folder whose cameras and pipelines the overview lists (default {DEFAULT_CONFIG_BASE})",  # noqa: E501
    )
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.output, args.config_base)
        for name in outdated:
            print(f"stale: {args.output / name}", file=sys.stderr)
        return 1 if outdated else 0
    for path in write(args.output, args.config_base):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
