"""The ``camioc`` command line (also ``python -m camioc``).

Options follow cam_server's (``--base``, ``--interface``, ``--camera-port``, ``--pipeline-port``,
``--hostname``) plus camioc's own (``--prefix``, port ranges, ``--log-level``, the browser rules
``--cors-origin`` and ``--allowed-host`` of :mod:`camioc.rest.browser`, the confinement options
``--data-dir`` and ``--max-upload-size`` of :mod:`camioc.config.paths`, who may write:
``--access-policy`` of :mod:`camioc.config.access` and ``--no-user-scripts``). EPICS networking is
configured the standard way, through the ``EPICS_CA_*``/``EPICS_CAS_*`` environment variables.

``camioc check <config dir>`` is the one subcommand: it validates every config file as the server
would (:mod:`camioc.core.check`) and exits 1 with a message per bad file. ``camioc [options]``
(no subcommand) starts the server, as always.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from camioc import __version__

if TYPE_CHECKING:
    from camioc.config.access import AccessPolicy


def bsread_address(text: str) -> str:
    """A bsread stream address (``tcp://host:port`` or ``ipc://path``), for ``--dispatcher-url``."""
    if text.startswith("ipc://") and len(text) > len("ipc://"):
        return text
    host, _, port = text.removeprefix("tcp://").rpartition(":")
    if not text.startswith("tcp://") or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a bsread stream address: use tcp://host:port (camioc reads no HTTP dispatcher)"
        )
    return text


def cors_origin(text: str) -> str:
    """A web origin (``scheme://host[:port]``) or ``*``, for ``--cors-origin``."""
    from camioc.rest.browser import normalize_origin

    try:
        return normalize_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def allowed_host(text: str) -> str:
    """A host name or address, optionally with ``:port``, or ``*``, for ``--allowed-host``."""
    from camioc.rest.browser import split_host

    if text.strip() == "*":
        return "*"
    try:
        split_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: use NAME or NAME:PORT, e.g. camioc.example.org") from None
    return text.strip()


def upload_size(text: str) -> int:
    """A size in bytes, with an optional k/M/G suffix (powers of 1024), for ``--max-upload-size``."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    clean = text.strip().lower().removesuffix("b")
    factor = units.get(clean[-1:], 1)
    number = clean[:-1] if clean[-1:] in units else clean
    try:
        size = int(float(number) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: use bytes or a k/M/G suffix, e.g. 10M") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be at least 1 byte")
    return size


def access_policy(text: str) -> AccessPolicy:
    """The access policy file for ``--access-policy``, loaded and checked (an error names the problem)."""
    from camioc.config.access import load_policy
    from camioc.errors import ConfigError

    try:
        return load_policy(Path(text).expanduser().resolve())
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def non_negative_seconds(text: str) -> float:
    """A duration option in seconds (0 allowed: off)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from camioc.config.paths import DEFAULT_MAX_UPLOAD_BYTES
    from camioc.core.instances import DEFAULT_STALL_TIMEOUT, DEFAULT_WORKER_NICE, MAX_NICE
    from camioc.core.ports import parse_port_range

    parser = argparse.ArgumentParser(
        prog="camioc",
        description="EPICS-native camera and image-pipeline server "
        "(caproto IOC, bsread streams, cam_server-compatible REST API).",
        epilog="'camioc check CONFIG_DIR' validates a configuration folder without starting the server "
        "(see 'camioc check --help').",
    )
    parser.add_argument(
        "--base",
        type=Path,
        default=Path("configs"),
        help="configuration base folder with camera_config/, pipeline_config/, "
        "background_config/, user_scripts/ (default: ./configs)",
    )
    parser.add_argument(
        "--interface",
        default="127.0.0.1",
        help="REST and Channel Access bind address (default 127.0.0.1; CA: unless EPICS_CAS_INTF_ADDR_LIST is set)",
    )
    parser.add_argument("--camera-port", type=int, default=8888, help="camera REST API port (default 8888)")
    parser.add_argument("--pipeline-port", type=int, default=8889, help="pipeline REST API port (default 8889)")
    parser.add_argument(
        "--hostname",
        default=None,
        help="host name put into stream addresses (default: the stream bind address if "
        "specific, else this machine's host name)",
    )
    parser.add_argument(
        "--stream-interface", default=None, help="bind address of bsread streams (default: same as --interface)"
    )
    parser.add_argument("--prefix", default="CAMIOC:", help="EPICS PV prefix (default CAMIOC:)")
    parser.add_argument(
        "--camera-stream-ports",
        type=parse_port_range,
        default=(10100, 10301),
        metavar="START:END",
        help="camera stream port range, END exclusive (default 10100:10301)",
    )
    parser.add_argument(
        "--pipeline-stream-ports",
        type=parse_port_range,
        default=(11100, 11201),
        metavar="START:END",
        help="pipeline stream port range, END exclusive (default 11100:11201)",
    )
    parser.add_argument(
        "--dispatcher-url",
        type=bsread_address,
        default=None,
        metavar="ADDRESS",
        help="bsread stream (tcp://host:port) that pipelines read 'bsread_channels' from when "
        "they give no 'bsread_address' (cam_server reads them from the SwissFEL data "
        "dispatcher; camioc reads the listed channels from this stream). Without it such "
        "configs are refused.",
    )
    parser.add_argument(
        "--cors-origin",
        type=cors_origin,
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (scheme://host[:port], e.g. http://dashboard:8080) use "
        "the REST APIs: their requests get CORS headers and may write; repeatable. By default "
        "no origin is allowed: a page from another origin can neither read the answers nor "
        "send writes (HTTP 403); pages the server serves itself and non-browser clients "
        "(curl, Python) are not affected. '*' allows every origin (cam_server's behaviour: "
        "any page in any browser that reaches the port may change configs and run scripts)",
    )
    parser.add_argument(
        "--allowed-host",
        type=allowed_host,
        action="append",
        default=[],
        metavar="NAME",
        help="a further name (NAME or NAME:PORT) the REST APIs answer to in the HTTP Host "
        "header; repeatable. On a loopback --interface the Host must be localhost, "
        "127.0.0.1, [::1], the --hostname or one of these (other names get HTTP 403: DNS "
        "rebinding protection). On other interfaces Host is checked only if this option is "
        "given (then also against the interface address and this machine's name); "
        "'*' switches the check off",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the only folder FILE-mode pipelines ('mode': 'FILE') write HDF5 files in: a "
        "relative 'file' (e.g. 'run_%%Y%%m%%d.h5', as cam_server's clients give) is written "
        "inside it, an absolute path only if it lies inside it; anything else ('../x', "
        "other folders, symlinks leading out) is refused (default: a 'data' folder beside "
        "--base, e.g. ./data for ./configs). Pipeline functions and libs likewise run only "
        "from --base's user_scripts/ (and the built-ins)",
    )
    parser.add_argument(
        "--max-upload-size",
        type=upload_size,
        default=DEFAULT_MAX_UPLOAD_BYTES,
        metavar="SIZE",
        help="largest user script or lib upload accepted (REST .../script_bytes, "
        ".../lib_bytes), bytes or with a k/M/G suffix (default 10M); larger uploads are "
        "refused with an error naming the limit",
    )
    parser.add_argument(
        "--access-policy",
        type=access_policy,
        default=None,
        metavar="FILE",
        help="YAML file saying which hosts (addresses, CIDR networks, names) and CA users may "
        "write (caput; REST POST/PUT/DELETE and GETs that start an instance) and which may "
        "only read; first matching rule wins, then 'default'. A mistake in the file stops "
        "camioc at start with a message naming it. Without it every client may write "
        "(cam_server's behaviour; a warning is logged when --interface is not loopback)",
    )
    parser.add_argument(
        "--no-user-scripts",
        dest="user_scripts",
        action="store_false",
        help="switch user scripts off: script and lib uploads over REST "
        "(.../script_bytes, .../lib_bytes) are refused, and so is every pipeline whose "
        "'function' is not a built-in (default, transparent) or that lists 'libs', when it "
        "is saved, created, started or updated (REST and CA)",
    )
    parser.add_argument(
        "--pva",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve every PV over PV Access too (p4p), and each image as the NTNDArray "
        "<image prefix>Pva1:Image (default on; binds to --interface)",
    )
    parser.add_argument(
        "--pva-port",
        type=int,
        default=None,
        metavar="PORT",
        help="TCP port of the PV Access server (default: EPICS_PVAS_SERVER_PORT, else 5075)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=non_negative_seconds,
        default=DEFAULT_STALL_TIMEOUT,
        metavar="S",
        help="a running worker that sends nothing for this long (no frame processed, no "
        "status: e.g. a user function in an endless loop) is marked stalled: state Error, "
        "'Stalled: ...' on StatusMessage_RBV and in the REST info (default "
        f"{DEFAULT_STALL_TIMEOUT:g}; 0: no watchdog)",
    )
    parser.add_argument(
        "--stall-action",
        choices=["mark", "stop"],
        default="mark",
        help="what a stall does: mark the instance (it recovers when the worker speaks "
        "again; default) or stop its worker (the instance stays visible with the reason)",
    )
    parser.add_argument(
        "--worker-memory-limit",
        type=upload_size,
        default=0,
        metavar="SIZE",
        help="resident memory a camera or pipeline worker may use, bytes or with a k/M/G "
        "suffix; a worker over it is stopped with an error naming both figures (default: "
        "no limit)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        choices=range(MAX_NICE + 1),
        default=DEFAULT_WORKER_NICE,
        metavar="N",
        help="camera and pipeline workers run N nicer (lower CPU priority, 0-19) than the control "
        "process, so that CA, PV Access and REST answer at once when processing takes every core "
        f"(default {DEFAULT_WORKER_NICE}; 0: the same priority)",
    )
    parser.add_argument(
        "--private-instance-timeout",
        type=non_negative_seconds,
        default=None,
        metavar="S",
        help="a private pipeline instance (REST POST /api/v1/pipeline[/<name>], POST /instance/) whose config "
        "gives no 'no_client_timeout' stops S seconds after its last client left (default: cam_server's 10; "
        "0: runs until stopped). Raise it when people type commands for an instance a script created",
    )
    parser.add_argument(
        "--put-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="append every accepted write (caput, PV Access put, REST POST/PUT/DELETE and starting GETs) to "
        "FILE, one line each, caPutLog-like: '<ISO time> <client address> <user> ca|pva|rest <PV or METHOD "
        "/route> new=<JSON> old=<JSON>' (config writes: the keys that changed). The service log "
        "(logger camioc.putlog) has every write in any case",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="log level (default INFO)",
    )
    parser.add_argument("--version", action="version", version=f"camioc {__version__}")
    return parser


def build_check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camioc check",
        description="Validate every config file of a camioc configuration folder (camera_config/, "
        "pipeline_config/, background_config/) with the validation the server applies when it loads, saves "
        "and starts them, and check what they reference (cameras, pipelines, backgrounds, function files). "
        "Prints one line per problem (file: error|warning: what is wrong) and a summary; exits 0 when there "
        "is no error, 1 otherwise. Give the server's own --data-dir, --dispatcher-url and --no-user-scripts "
        "when it runs with them: they change what a pipeline may say.",
    )
    parser.add_argument("base", type=Path, metavar="CONFIG_DIR", help="the folder camioc runs on (its --base)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the server's --data-dir (default: 'data' beside CONFIG_DIR)",
    )
    parser.add_argument(
        "--dispatcher-url", type=bsread_address, default=None, metavar="ADDRESS", help="the server's --dispatcher-url"
    )
    parser.add_argument(
        "--no-user-scripts", dest="user_scripts", action="store_false", help="the server runs with --no-user-scripts"
    )
    parser.add_argument(
        "--strict", action="store_true", help="warnings (unknown keys, unsaved input pipelines, ...) count as errors"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def check(argv: list[str]) -> int:
    """``camioc check``: 0 when every file is good, 1 when one is not (2: usage, from argparse)."""
    from camioc.core.check import CheckOptions, check_config_dir, format_report, report_json

    args = build_check_parser().parse_args(argv)
    options = CheckOptions(
        data_dir=args.data_dir.resolve() if args.data_dir is not None else None,
        dispatcher_url=args.dispatcher_url,
        user_scripts=args.user_scripts,
        strict=args.strict,
    )
    report = check_config_dir(args.base, options)
    print(report_json(report) if args.json else format_report(report), flush=True)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    from camioc.ioc import configure_caproto_environment

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["check"]:
        return check(argv[1:])
    # caproto reads its latency settings at import of caproto.server: before anything imports it
    args = build_parser().parse_args(argv)
    configure_caproto_environment(interface=args.interface)
    level = getattr(logging, args.log_level)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("caproto").setLevel(max(level, logging.WARNING))

    from camioc.app import Settings, serve
    from camioc.core.instances import Supervision

    settings = Settings(
        base=args.base.resolve(),
        interface=args.interface,
        camera_port=args.camera_port,
        pipeline_port=args.pipeline_port,
        hostname=args.hostname,
        stream_interface=args.stream_interface,
        prefix=args.prefix,
        camera_stream_ports=args.camera_stream_ports,
        pipeline_stream_ports=args.pipeline_stream_ports,
        log_level=level,
        dispatcher_url=args.dispatcher_url,
        cors_origins=tuple(args.cors_origin),
        allowed_hosts=tuple(args.allowed_host),
        data_dir=args.data_dir.resolve() if args.data_dir is not None else None,
        max_upload_bytes=args.max_upload_size,
        access_policy=args.access_policy,
        user_scripts=args.user_scripts,
        pva=args.pva,
        pva_port=args.pva_port,
        private_instance_timeout=args.private_instance_timeout,
        supervision=Supervision(
            stall_timeout=args.stall_timeout,
            stop_stalled=args.stall_action == "stop",
            memory_limit=args.worker_memory_limit,
            worker_nice=args.worker_nice,
        ),
    )
    from camioc.putlog import close_put_log, open_put_log

    try:
        put_log = open_put_log(args.put_log) if args.put_log is not None else None
    except OSError as exc:
        logging.getLogger("camioc").error("cannot open the put log %s: %s", args.put_log, exc)
        return 1
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    except OSError as exc:  # e.g. a REST port already in use
        logging.getLogger("camioc").error("cannot run camioc: %s", exc)
        return 1
    finally:
        if put_log is not None:
            close_put_log(put_log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
