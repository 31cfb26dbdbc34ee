"""Composition root: builds every part of camioc and runs them on one asyncio loop.

Nothing else wires parts together. The order matters only at the edges: the config folders must
exist before the managers read them, the IOC registers as a listener of the managers before any
instance starts, and on shutdown the REST sites stop accepting requests before the instances are
stopped, so no request can start a worker that shutdown would then miss.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from camioc import __version__
from camioc.config.access import AccessPolicy
from camioc.config.paths import DEFAULT_MAX_UPLOAD_BYTES, default_data_dir
from camioc.core.instances import Supervision

if TYPE_CHECKING:
    from camioc.pva.server import PvaServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Everything the command line decides (see :mod:`camioc.cli`)."""

    base: Path
    interface: str = "127.0.0.1"
    camera_port: int = 8888
    pipeline_port: int = 8889
    hostname: str | None = None
    stream_interface: str | None = None
    prefix: str = "CAMIOC:"
    camera_stream_ports: tuple[int, int] = (10100, 10301)
    pipeline_stream_ports: tuple[int, int] = (11100, 11201)
    log_level: int = logging.INFO
    #: ``--dispatcher-url``: the bsread stream pipelines read ``bsread_channels`` from (None: refused).
    dispatcher_url: str | None = None
    #: ``--cors-origin`` / ``--allowed-host``: what web pages may do (:mod:`camioc.rest.browser`).
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    #: ``--data-dir``: the only folder FILE outputs write in (None: ``data`` beside ``base``).
    data_dir: Path | None = None
    #: ``--max-upload-size``: the largest script or lib upload (bytes).
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: ``--access-policy``: who may write over CA and REST (None: everyone, as cam_server).
    access_policy: AccessPolicy | None = None
    #: ``--no-user-scripts`` makes it False: user scripts switched off (REST refuses script/lib uploads).
    user_scripts: bool = True
    #: ``--no-pva`` makes it False: no PV Access server beside CA; ``--pva-port``: its TCP port.
    pva: bool = True
    pva_port: int | None = None
    #: ``--stall-timeout``, ``--stall-action``, ``--worker-memory-limit``: how workers are watched.
    supervision: Supervision = field(default_factory=Supervision)
    #: ``--private-instance-timeout``: a private instance's ``no_client_timeout`` when its config gives none.
    private_instance_timeout: float | None = None

    @property
    def effective_data_dir(self) -> Path:
        """``--data-dir``, else ``data`` beside the configuration folder."""
        return self.data_dir if self.data_dir is not None else default_data_dir(self.base)

    @property
    def effective_stream_interface(self) -> str:
        """Where streams bind: ``--stream-interface``, else the REST interface."""
        return self.stream_interface or self.interface

    @property
    def effective_hostname(self) -> str:
        """The host put into stream addresses.

        ``--hostname`` if given; else the bind address when it is a specific one (so that the
        advertised address is reachable: a 127.0.0.1-bound stream must not be advertised under
        the machine's name); else the machine's host name, as cam_server does.
        """
        if self.hostname:
            return self.hostname
        bind = self.effective_stream_interface
        if bind not in ("0.0.0.0", "*", "", "::"):
            return bind
        return socket.gethostname()


def bump_start_count(base: Path) -> int:
    """Count server starts (iocStats' START_CNT) in ``<base>/.camioc_state.json``, written atomically."""
    path = base / ".camioc_state.json"
    try:
        state = json.loads(path.read_text())
        count = int(state.get("start_count", 0)) + 1
    except (OSError, ValueError, AttributeError):
        state, count = {}, 1
    state["start_count"] = count
    fd, tmp = tempfile.mkstemp(prefix=".camioc_state.", dir=base)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count


#: The EPICS variables that make a server listen elsewhere than ``--interface`` (CA, PVA).
INTERFACE_VARIABLES = (("EPICS_CAS_INTF_ADDR_LIST", "CA"), ("EPICS_PVAS_INTF_ADDR_LIST", "PVA"))


def network_interfaces(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The non-loopback addresses this server listens on, each with what serves it: ``--interface``
    (REST, streams and, unless the EPICS environment says otherwise, CA and PVA), and every address
    of ``EPICS_CAS_INTF_ADDR_LIST`` (CA) and ``EPICS_PVAS_INTF_ADDR_LIST`` (PVA, when served)."""
    from camioc.rest.browser import is_loopback

    env = os.environ if environ is None else environ
    found = [] if is_loopback(settings.interface) else [f"{settings.interface} (--interface)"]
    for variable, what in INTERFACE_VARIABLES:
        if what == "PVA" and not settings.pva:
            continue
        for entry in env.get(variable, "").split():
            address = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry  # a host:port entry
            if not is_loopback(address) and address != settings.interface:  # (the CLI copies --interface)
                found.append(f"{entry} ({what}: {variable})")
    return found


def log_access_policy(settings: Settings, environ: Mapping[str, str] | None = None) -> AccessPolicy:
    """The access policy in force, logged once: its rules, or a warning when a network interface
    is served without one (anyone who reaches the ports may then change everything): a
    non-loopback ``--interface``, or one named by ``EPICS_CAS_INTF_ADDR_LIST`` /
    ``EPICS_PVAS_INTF_ADDR_LIST`` (:func:`network_interfaces`)."""
    policy = settings.access_policy or AccessPolicy.open()
    if not policy.is_open:
        log.info("who may write: %s", policy.describe())
    else:
        exposed = network_interfaces(settings, environ)
        if exposed:
            log.warning("serving %s with no access policy: every client that reaches it may change configs, "
                        "start and stop instances and upload scripts over REST and CA (give --access-policy "
                        "FILE to restrict writes; see the README's Security section)", ", ".join(exposed))
    if not settings.user_scripts:
        log.info("user scripts are switched off (--no-user-scripts): no script or lib uploads, only built-in "
                 "pipeline functions run")
    return policy


class CamiocApp:
    """One camioc server: managers, IOC, REST sites. ``start()`` then ``stop()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._started = False

    async def start(self) -> None:
        from camioc.config.store import ConfigLayout, ConfigStore
        from camioc.core.backgrounds import BackgroundStore
        from camioc.core.camera_manager import CameraManager
        from camioc.core.heap import HeapSettler
        from camioc.core.pipeline_manager import PipelineManager
        from camioc.core.worker import start_worker_server
        from camioc.ioc.server import CamiocIoc
        from camioc.logbuffer import install_log_buffer
        from camioc.rest.browser import BrowserPolicy
        from camioc.rest.camera_api import create_camera_app
        from camioc.rest.pipeline_api import create_pipeline_app
        from camioc.rest.server import RestSite

        settings = self.settings
        layout = ConfigLayout(settings.base)
        layout.ensure()
        self.layout = layout
        self.logs = install_log_buffer()
        start_count = bump_start_count(settings.base)

        self.cameras = CameraManager(
            ConfigStore(layout.camera_config),
            hostname=settings.effective_hostname,
            bind_host=settings.effective_stream_interface,
            port_range=settings.camera_stream_ports,
            background_dir=layout.background_config,
            log_level=settings.log_level,
            supervision=settings.supervision,
        )
        self.pipelines = PipelineManager(
            ConfigStore(layout.pipeline_config),
            self.cameras,
            BackgroundStore(layout.background_config),
            hostname=settings.effective_hostname,
            bind_host=settings.effective_stream_interface,
            port_range=settings.pipeline_stream_ports,
            scripts_dir=layout.user_scripts,
            log_level=settings.log_level,
            dispatcher_url=settings.dispatcher_url,
            supervision=settings.supervision,
            data_dir=settings.effective_data_dir,
            user_scripts=settings.user_scripts,
            private_timeout=settings.private_instance_timeout,
        )
        access = log_access_policy(settings)
        self.ioc = CamiocIoc(settings.prefix, self.cameras, version=__version__, start_count=start_count,
                             pipelines=self.pipelines, access=access)
        browser = BrowserPolicy(settings.cors_origins, settings.allowed_hosts, interface=settings.interface,
                                hostname=settings.hostname)
        self.camera_site = RestSite(
            create_camera_app(self.cameras, version=__version__, logs=self.logs, scripts_dir=layout.user_scripts,
                              browser=browser, max_upload_bytes=settings.max_upload_bytes, access=access,
                              user_scripts=settings.user_scripts),
            settings.interface,
            settings.camera_port,
        )
        self.pipeline_site = RestSite(
            create_pipeline_app(self.pipelines, self.cameras, version=__version__, logs=self.logs,
                                scripts_dir=layout.user_scripts, libs_dir=layout.user_libs, browser=browser,
                                max_upload_bytes=settings.max_upload_bytes, access=access,
                                user_scripts=settings.user_scripts),
            settings.interface,
            settings.pipeline_port,
        )
        # the worker fork server imports and compiles everything once (seconds): start it now,
        # off the loop, so that the first instance a user asks for starts at once
        self._worker_server: asyncio.Future[None] | None = asyncio.get_running_loop().run_in_executor(
            None, start_worker_server)
        self.pva = await self._start_pva(access.write_refusal)
        await self.ioc.start()
        await self.camera_site.start()
        await self.pipeline_site.start()
        # the long-lived heap (every PV) frozen out of the full collections once it is built,
        # and again after instances come and go (camioc.core.heap: the 100 ms pauses of issue 11)
        self.heap = HeapSettler()
        self.cameras.add_listener(self.heap)
        self.pipelines.add_listener(self.heap)
        self.heap.schedule()
        self._started = True
        log.info(
            "camioc %s serving: camera API %s, pipeline API %s, PV prefix %s, configuration %s",
            __version__,
            self.camera_site.url,
            self.pipeline_site.url,
            settings.prefix,
            settings.base,
        )

    async def _start_pva(self, write_refusal: Callable[[str, str | None, str | None], str | None]) -> PvaServer | None:
        """The PV Access server over the IOC's devices (None with ``--no-pva``)."""
        if not self.settings.pva:
            return None
        from camioc.pva import configure_pva_environment
        from camioc.pva.server import PvaServer  # late: p4p loads only when PVA is served

        configure_pva_environment(interface=self.settings.interface, port=self.settings.pva_port)
        pva = PvaServer(write_refusal=write_refusal)
        await pva.start()
        self.ioc.add_transport(pva)
        return pva

    async def stop(self) -> None:
        """Stop accepting requests, stop every instance, then the IOC. Safe to call twice."""
        for part in ("camera_site", "pipeline_site"):
            site = getattr(self, part, None)
            if site is not None:
                try:
                    await site.stop()
                except Exception:
                    log.exception("stopping %s failed", part)
        for part in ("pipelines", "cameras"):  # pipelines first: they hold camera streams
            manager = getattr(self, part, None)
            if manager is not None:
                try:
                    await manager.close()
                except Exception:
                    log.exception("stopping %s failed", part)
        ioc = getattr(self, "ioc", None)
        if ioc is not None:
            await ioc.stop()
        pva = getattr(self, "pva", None)
        if pva is not None:
            await pva.stop()
        heap = getattr(self, "heap", None)
        if heap is not None:
            heap.close()
        worker_server = getattr(self, "_worker_server", None)
        if worker_server is not None:
            from camioc.core.worker import stop_worker_server

            await asyncio.gather(worker_server, return_exceptions=True)  # a start still running
            await asyncio.wait_for(asyncio.to_thread(stop_worker_server), 10.0)
            self._worker_server = None
        self._started = False


async def serve(settings: Settings) -> None:
    """Run camioc until SIGINT/SIGTERM, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = CamiocApp(settings)
    try:
        await app.start()
        print(
            f"camioc {__version__} running\n"
            f"  camera REST API   : {app.camera_site.url}/api/v1/cam\n"
            f"  pipeline REST API : {app.pipeline_site.url}/api/v1/pipeline\n"
            f"  EPICS PV prefix   : {settings.prefix}  (e.g. caget {settings.prefix}Version_RBV)\n"
            f"  configuration     : {settings.base}\n"
            f"  FILE output folder: {settings.effective_data_dir}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        await stop.wait()
        log.info("stop requested")
    finally:
        await app.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


__all__ = ["CamiocApp", "Settings", "bump_start_count", "log_access_policy", "network_interfaces", "serve"]
