""":class:`CamiocIoc`: camioc's caproto IOC on the running asyncio loop.

It serves the service block; per configured camera a driver block (``cam1:``) and an image block
(``image1:``); per pipeline id (every saved pipeline and every running instance) a pipeline block
(``$(P)<id>:``, :mod:`camioc.model.pipeline`), its waveforms, its ``Out:`` readbacks and an image
block with the processed image. It listens to the :class:`~camioc.core.api.CameraService` and
pipeline service (:class:`~camioc.core.api.PipelineService`) events and turns them into PV
writes.

Event handling (``camera_*`` are called on the loop thread and must not block):

- ``camera_added``/``camera_removed`` schedule adding/removing the camera's groups. Structural
  changes run one at a time (one lock), and groups are built in a worker thread (a camera's ~50
  records with their fields take ~0.1 s of pure-Python object creation).
- ``camera_status`` keeps only the latest status per camera; one task per camera applies it, at
  most ``result_publish_rate`` times per second, writing only values that changed.
- ``camera_image`` keeps only the latest snapshot per camera; one task per camera publishes it
  (the service already limits snapshots to ``MinCallbackTime``). If the client side is slower,
  intermediate snapshots are skipped, never queued.

Pipelines are handled the same way: ``pipeline_added``/``pipeline_removed`` add/remove the
pipeline's groups (a stopped private instance's PVs go; a saved pipeline's stay), the latest
``pipeline_status`` is applied at most ``result_publish_rate`` times per second per pipeline
(one write per changed value), ``pipeline_image`` snapshots go to ``$(P)<id>:image1:`` exactly as a
camera's. The waveforms (``ProfileX_RBV`` ...) start with 4096 elements and are re-created with
the next power of two when a pipeline sends longer arrays (like the image block, below).
``Out:<field>_RBV`` readbacks are added when a new output field appears (see
:class:`~camioc.model.pipeline.OutFields`).

Image PVs: ``ArrayData``'s element type follows the camera's dtype (see
:func:`camioc.model.records.image_format`: 8-bit -> CHAR, 16-bit -> SHORT, 32-bit -> LONG, float32 ->
FLOAT, float64 and 64-bit integers -> DOUBLE) and its length (NELM, fixed for a PV's lifetime) is the
sensor's ``MaxSizeX * MaxSizeY`` (no transform makes an image larger), or 2048 x 2048 before the
sensor is known. When a camera reports a larger sensor or another element type, its image block is
re-created: the new PVs replace the old ones in one step (the names never go unknown), and clients
of the old image PVs see them disconnect and reconnect to the new ones (libca re-searches with
back-off, typically within seconds). Images only ever need this on a camera's first start or after
a dtype change; blocks never shrink.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

import numpy as np

from camioc.config.access import AccessPolicy
from camioc.core.api import CameraService, CameraStatus, ImageSnapshot, PipelineService, PipelineStatus
from camioc.ioc.groups import DeviceGroup, cached_group_class, group_class, waveform_class
from camioc.ioc.registry import CamiocContext, PVRegistry
from camioc.model.blocks import CAMERA_PVS, IMAGE_PVS, PIPELINE_ARRAY_PVS, PIPELINE_PVS, PROFILE_NELM, SERVICE_PVS
from camioc.model.camera import CameraDevice, ImageDevice, calibrated_axes
from camioc.model.device import Transport
from camioc.model.health import apply_worker_health
from camioc.model.instance_names import camera_pv_name, out_name_length, pipeline_image_plugin, pipeline_pv_name
from camioc.model.pipeline import (
    ArraysDevice,
    OutDevice,
    OutFields,
    PipelineDevice,
    grown_capacity,
    needed_array_length,
)
from camioc.model.pvnames import MAX_PV_NAME_LENGTH, camera_prefix, image_prefix, pipeline_prefix
from camioc.model.records import (
    CALIBRATED_EGU,
    DEFAULT_IMAGE_ELEMENTS,
    DEFAULT_IMAGE_FORMAT,
    NO_DATA,
    PIXEL_EGU,
    Alarm,
    ImageFormat,
    PVDef,
    image_format,
    with_axis_unit,
)
from camioc.model.service import ServiceDevice

log = logging.getLogger(__name__)

#: Characters EPICS record names conventionally use.
_PV_NAME_PART = re.compile(r"[A-Za-z0-9_:.\-]+")
#: How long :meth:`CamiocIoc.start` waits for the server to bind its sockets.
START_TIMEOUT = 10.0
#: How long a Single/Multiple acquisition waits for blocking pipelines' results of its last frame.
PLUGIN_WAIT_TIMEOUT = 10.0
HEARTBEAT_PERIOD = 1.0
#: The transports' key of the service block (every other block's key is its registry key).
SERVICE_KEY = "service"

#: The CA group classes of the fixed-size blocks (made once: ~150 pvproperties for a pipeline).
ServiceGroup = group_class("ServiceGroup", SERVICE_PVS)
CameraDriverGroup = group_class("CameraDriverGroup", CAMERA_PVS)
PipelineGroup = group_class("PipelineGroup", PIPELINE_PVS)
_ARRAY_ATTRS = tuple(spec.attr for spec in PIPELINE_ARRAY_PVS)


def image_group(key: str, device: ImageDevice, fmt: ImageFormat, elements: int) -> DeviceGroup:
    """The image block for images of ``fmt`` with up to ``elements`` pixels."""
    return waveform_class("ImageGroup", IMAGE_PVS, ("array_data",), fmt.ftvl, elements)(key, device)


def arrays_group(key: str, elements: int) -> DeviceGroup:
    """The profile/axis/fit waveforms of a pipeline, ``elements`` long."""
    return waveform_class("PipelineArraysGroup", PIPELINE_ARRAY_PVS, _ARRAY_ATTRS, None, elements)(key, ArraysDevice())


class RefusedPutLogFilter(logging.Filter):
    """Log a refused put as one warning line instead of caproto's ERROR with a traceback.

    A refused put is the IOC working as intended (bad input, service refusal); the client gets
    the message. Installed on caproto's circuit logger while an IOC runs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Invalid write request") and record.exc_info:
            error = record.exc_info[1]
            # caproto logs this message with positional arguments (user, host, command)
            user, host = cast(tuple[Any, ...], record.args or ("?", "?"))[:2]
            record.msg = "Refused put by %s (%s): %s %s"
            record.args = (user, host, type(error).__name__, error)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_REFUSED_PUT_FILTER = RefusedPutLogFilter()


class BeaconLogFilter(logging.Filter):
    """One warning line per beacon address that cannot be reached, instead of caproto's traceback
    at every beacon (e.g. no ``caRepeater`` on a loopback beacon address: ConnectionRefused).

    Beacons only speed up reconnection; clients find the server by search without them.
    Installed on caproto's context logger while an IOC runs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._warned: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Failed to send beacon"):
            return True
        address = str(record.args[0] if isinstance(record.args, tuple) and record.args else "?")
        if address in self._warned:
            return False
        self._warned.add(address)
        error = record.exc_info[1] if record.exc_info else None
        record.msg = "Beacons to %s cannot be sent (%s); clients still find this server by search"
        record.args = (address, error or "?")
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _format_of(dtype: str) -> ImageFormat | None:
    if not dtype:
        return None
    try:
        return image_format(dtype)
    except (TypeError, ValueError):
        return None


class _Binding:
    """The groups and publishing state of one camera or pipeline inside the IOC.

    Common part: the image block (``image1:``) and the coalesced status. ``set_publishing`` is the
    service's ``set_image_publishing`` (raising refuses the ``image1:`` put).
    """

    kind = "?"
    #: the ``<cam>`` / ``<id>`` of its PVs (camioc.model.instance_names), set by the subclass
    pv_name: str

    def __init__(self, name: str, image_key: str, min_period: float,
                 set_publishing: Callable[[str, bool, float], None]) -> None:
        self.name = name
        self.image_key = image_key
        self.image: DeviceGroup | None = None
        self.image_format: ImageFormat | None = None
        self.enabled = True
        self.min_period = float(min_period)
        self.set_publishing = set_publishing
        self.pending_status: Any = None
        self.pending_image: ImageSnapshot | None = None
        self.status_task: asyncio.Task | None = None
        self.image_task: asyncio.Task | None = None
        self.last_status = -math.inf
        self.images_published = 0
        self.removed = False

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def ready(self) -> bool:
        """Whether the groups exist (status can be applied)."""
        return self.image is not None

    def tasks(self) -> list[asyncio.Task]:
        return [task for task in (self.status_task, self.image_task) if task is not None]

    def keys(self) -> list[str]:
        """Registry keys of every group of this binding."""
        return [self.image_key]

    def forget_groups(self) -> None:
        self.image = None


class _CameraBinding(_Binding):
    kind = "camera"

    def __init__(self, name: str, prefix: str, min_period: float,
                 set_publishing: Callable[[str, bool, float], None]) -> None:
        #: the ``<cam>`` of its PVs (the name, or its stable short form: camioc.model.instance_names)
        self.pv_name = camera_pv_name(name)
        super().__init__(name, image_prefix(prefix, self.pv_name), min_period, set_publishing)
        self.driver_key = camera_prefix(prefix, self.pv_name)
        self.driver: DeviceGroup | None = None

    @property
    def ready(self) -> bool:
        return self.driver is not None

    def keys(self) -> list[str]:
        return [self.driver_key, self.image_key]

    def forget_groups(self) -> None:
        self.driver = self.image = None


class _PipelineBinding(_Binding):
    kind = "pipeline"

    def __init__(self, name: str, prefix: str, min_period: float,
                 set_publishing: Callable[[str, bool, float], None], camera_pv_names: Iterable[str] = ()) -> None:
        #: the ``<id>`` of its PVs; its image is under ``image2:`` if a camera has this PV name
        self.pv_name = pipeline_pv_name(name)
        plugin = pipeline_image_plugin(self.pv_name, camera_pv_names)
        super().__init__(name, image_prefix(prefix, self.pv_name, plugin), min_period, set_publishing)
        self.main_key = pipeline_prefix(prefix, self.pv_name)
        self.arrays_key = f"{self.main_key}[arrays]"
        self.main: DeviceGroup | None = None
        self.arrays: DeviceGroup | None = None
        self.outs = OutFields(out_name_length(self.main_key))
        self.out_keys: list[str] = []
        #: the results of the last run (shown as no data until the current run sends its own)
        self.stale_results: Any = None
        self.running: bool | None = None

    @property
    def ready(self) -> bool:
        return self.main is not None

    def keys(self) -> list[str]:
        return [self.main_key, self.arrays_key, *self.out_keys, self.image_key]

    def forget_groups(self) -> None:
        self.main = self.arrays = self.image = None


class CamiocIoc:
    """camioc's caproto IOC (see the module doc). Implements :class:`~camioc.core.api.CameraEvents`
    and :class:`~camioc.core.api.PipelineEvents`.

    ``pipelines`` (optional) is the pipeline service (:class:`~camioc.core.api.PipelineService`,
    i.e. the ``PipelineManager``): its ids get pipeline PVs, and ``pipeline_names()`` /
    ``active_instances()`` / ``stop_all()`` feed ``Pipelines_RBV``, ``Instances_RBV``,
    ``NumInstances_RBV`` and ``StopAll``. Without it the IOC serves cameras only.

    ``access`` (optional): who may write (:class:`~camioc.config.access.AccessPolicy`), applied to
    every PV by the server's circuits (:mod:`camioc.ioc.registry`); None lets every client write.
    """

    def __init__(
        self,
        prefix: str,
        cameras: CameraService,
        *,
        version: str,
        start_count: int,
        pipelines: PipelineService | None = None,
        image_publish_default_period: float = 0.5,
        result_publish_rate: float = 10.0,
        access: AccessPolicy | None = None,
        transports: Iterable[Transport] = (),
    ) -> None:
        if result_publish_rate <= 0:
            raise ValueError(f"result_publish_rate must be > 0, got {result_publish_rate}")
        if image_publish_default_period < 0:
            raise ValueError(f"image_publish_default_period must be >= 0, got {image_publish_default_period}")
        self.prefix = prefix
        self._cameras = cameras
        self._default_period = float(image_publish_default_period)
        self._status_period = 1.0 / float(result_publish_rate)
        self._bindings: dict[str, _CameraBinding] = {}
        self._pipeline_bindings: dict[str, _PipelineBinding] = {}
        self._pipeline_service = pipelines
        self._access = access
        #: further protocols served over the same devices (PV Access): told of every block
        self._transports: list[Transport] = list(transports)
        self._tasks: set[asyncio.Task] = set()
        self._structure_lock = asyncio.Lock()
        self._service: DeviceGroup | None = None
        self._service_device = ServiceDevice(version=version, start_count=start_count, stop_all=self._stop_all)
        self._pvdb: dict[str, Any] = {}
        self._registry = PVRegistry(self._pvdb)
        self._context: CamiocContext | None = None
        self._server_task: asyncio.Task | None = None
        self._service_task: asyncio.Task | None = None
        self._service_refresh_pending = False
        self._last_service_refresh = -math.inf
        self._heartbeat = 0
        self._beacon_filter = BeaconLogFilter()
        #: notified whenever a pipeline's status was shown (acquisitions wait on it: _wait_for_plugins)
        self._results_shown = asyncio.Condition()
        self._started = False
        self._stopped = False

    # ================================================================== lifecycle
    async def start(self) -> None:
        """Build the PVs, start serving, register as camera listener; return once serving."""
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped CamiocIoc cannot be started again")
        self._started = True
        logging.getLogger("caproto.circ").addFilter(_REFUSED_PUT_FILTER)
        self._beacon_filter = BeaconLogFilter()
        logging.getLogger("caproto.ctx").addFilter(self._beacon_filter)
        self._service = ServiceGroup(self.prefix, self._service_device)
        await self._service.initialise()
        await self._announce(SERVICE_KEY, self._service)
        self._pvdb.update(self._service.pvdb)
        self._context = CamiocContext(self._pvdb, access=self._access)
        serving = asyncio.Event()

        async def startup_hook(async_lib: Any) -> None:
            serving.set()

        loop = asyncio.get_running_loop()
        self._server_task = loop.create_task(self._context.run(startup_hook=startup_hook), name="camioc-ioc")
        waiter = loop.create_task(serving.wait())
        try:
            done, _ = await asyncio.wait({self._server_task, waiter}, timeout=START_TIMEOUT,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        if self._server_task in done:
            logging.getLogger("caproto.circ").removeFilter(_REFUSED_PUT_FILTER)
            self._stopped = True
            error = self._server_task.exception() if not self._server_task.cancelled() else None
            raise RuntimeError(f"the CA server failed to start: {error}") from error
        if not serving.is_set():
            await self.stop()
            raise RuntimeError(f"the CA server did not start within {START_TIMEOUT:g} s")
        # The server computed the startup hooks of the PVs present when it started; from now on
        # the registry starts the hooks of groups it adds.
        self._registry.attach(self._context)
        self._cameras.add_listener(self)
        for name in self._cameras.camera_names():
            self.camera_added(name)
        if self._pipeline_service is not None:
            self._pipeline_service.add_listener(self)
            for instance_id in self._pipeline_service.ids():
                self.pipeline_added(instance_id)
        await self._drain_structural()
        self._spawn(self._heartbeat_loop(), "heartbeat")
        self._request_service_refresh()
        log.info("CA server for prefix %s serving %d PVs on port %s", self.prefix, len(self.pv_names()),
                 self._context.port)

    async def stop(self) -> None:
        """Stop publishing and serving: tasks cancelled, sockets and client circuits closed."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._cameras.remove_listener(self)
        except Exception:
            log.exception("removing the IOC as camera listener failed")
        if self._pipeline_service is not None:
            try:
                self._pipeline_service.remove_listener(self)
            except Exception:
                log.exception("removing the IOC as pipeline listener failed")
        tasks = [*self._tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        context, server_task = self._context, self._server_task
        if server_task is not None and context is not None:
            loop = asyncio.get_running_loop()
            for sock in list(getattr(context, "tcp_sockets", {}).values()):
                try:
                    loop.remove_reader(sock.fileno())  # the accept loop's; caproto closes the socket
                except (ValueError, OSError):
                    pass
            server_task.cancel()
            await asyncio.gather(server_task, return_exceptions=True)
            for circuit in list(context.circuits):
                try:
                    circuit.client.close()
                except Exception:
                    pass
        logging.getLogger("caproto.circ").removeFilter(_REFUSED_PUT_FILTER)
        logging.getLogger("caproto.ctx").removeFilter(self._beacon_filter)
        log.info("CA server for prefix %s stopped", self.prefix)

    def pv_names(self) -> list[str]:
        """Every record served now (service, cameras, pipelines, images), sorted; no ``.FIELD``."""
        names = set(self._service.pvdb) if self._service is not None else set()
        names.update(self._registry.names())
        return sorted(names)

    @property
    def port(self) -> int | None:
        """The TCP port the CA server listens on (None before start)."""
        return None if self._context is None else self._context.port

    # ================================================================== CameraEvents
    def camera_added(self, name: str) -> None:
        if self._stopped or name in self._bindings:
            return
        binding = _CameraBinding(name, self.prefix, self._default_period, self._cameras.set_image_publishing)
        self._bindings[name] = binding
        self._spawn(self._add_camera(binding), f"add {name}", structural=True)
        self._request_service_refresh()

    def camera_removed(self, name: str) -> None:
        self._drop(self._bindings.pop(name, None))

    def _drop(self, binding: _Binding | None) -> None:
        """A camera or pipeline went: its PVs go (the removal is structural: one at a time)."""
        if binding is None:
            return
        binding.removed = True
        self._spawn(self._remove(binding), f"remove {binding.label}", structural=True)
        self._request_service_refresh()

    def camera_status(self, status: CameraStatus) -> None:
        binding = self._bindings.get(status.name)
        if binding is None or self._stopped:
            return
        binding.pending_status = status
        self._kick_status(binding)
        self._request_service_refresh()

    def camera_image(self, snapshot: ImageSnapshot) -> None:
        self._offer_image(self._bindings.get(snapshot.name), snapshot)

    def _offer_image(self, binding: _Binding | None, snapshot: ImageSnapshot) -> None:
        if binding is None or self._stopped or not binding.enabled:
            return
        binding.pending_image = snapshot
        self._kick_image(binding)

    def instances_changed(self, name: str) -> None:
        """Optional event (the camera manager sends it): an instance started or stopped."""
        self._request_service_refresh()

    # ================================================================== PipelineEvents
    def pipeline_added(self, instance_id: str) -> None:
        service = self._pipeline_service
        if self._stopped or service is None or instance_id in self._pipeline_bindings:
            return
        cameras = (camera_pv_name(name) for name in self._cameras.camera_names())
        binding = _PipelineBinding(instance_id, self.prefix, self._default_period, service.set_image_publishing,
                                   cameras)
        self._pipeline_bindings[instance_id] = binding
        self._spawn(self._add_pipeline(binding), f"add pipeline {instance_id}", structural=True)
        self._request_service_refresh()

    def pipeline_removed(self, instance_id: str) -> None:
        self._drop(self._pipeline_bindings.pop(instance_id, None))

    def pipeline_status(self, status: PipelineStatus) -> None:
        binding = self._pipeline_bindings.get(status.instance_id)
        if binding is None or self._stopped:
            return
        if not status.running:
            binding.stale_results = status.results
        if status.running != binding.running:
            binding.running = status.running
            self._request_service_refresh()
        binding.pending_status = status
        self._kick_status(binding)

    def pipeline_image(self, snapshot: ImageSnapshot) -> None:
        self._offer_image(self._pipeline_bindings.get(snapshot.name), snapshot)

    # ================================================================== pipelines: structure
    async def _add_pipeline(self, binding: _PipelineBinding) -> None:
        async with self._structure_lock:
            if binding.removed:
                return
            status = self._current_pipeline_status(binding.name)
            fmt, elements = self._pipeline_image_size(status)
            groups = await asyncio.to_thread(self._build_pipeline_groups, binding, fmt, elements,
                                             self._axis_egu(status))
            if binding.removed:
                return
            for group in groups:
                await group.initialise()
            added: list[str] = []
            try:
                for key, group in zip((binding.main_key, binding.arrays_key, binding.image_key), groups, strict=True):
                    await self._serve(key, group)
                    added.append(key)
            except KeyError as exc:
                log.error("pipeline %s: its PVs are not served (a camera of the same name?): %s", binding.name, exc)
                for key in added:
                    await self._unserve(key)
                return
            binding.main, binding.arrays, binding.image = groups
            binding.image_format = fmt
        if status is not None:
            if binding.running is None:
                binding.running = status.running
            if not status.running and binding.stale_results is None:
                binding.stale_results = status.results
            if binding.pending_status is None:
                binding.pending_status = status
        self._apply_publishing(binding)
        self._kick_status(binding)
        self._kick_image(binding)
        self._check_names(binding.label, binding.name, binding.pv_name, groups)

    def _build_pipeline_groups(self, binding: _PipelineBinding, fmt: ImageFormat, elements: int, axis_egu: str):
        # Runs in a worker thread: pure object creation, touches nothing the loop uses.
        assert self._pipeline_service is not None  # pipelines get bindings only then (pipeline_added)
        specs = with_axis_unit(PIPELINE_PVS, axis_egu)
        group = PipelineGroup if specs == PIPELINE_PVS else cached_group_class("PipelineGroup", specs)
        main = group(binding.main_key, PipelineDevice(binding.name, self._pipeline_service, specs,
                                                      port=binding.pv_name))
        arrays = arrays_group(binding.main_key, PROFILE_NELM)
        return main, arrays, self._build_image_group(binding, fmt, elements)

    def _axis_egu(self, status: PipelineStatus | None) -> str:
        """EGU of the pipeline's positions when its PVs are made: ``px``, or (a calibrated camera)
        the calibration's unit; decided once (a calibration added later shows after a restart)."""
        if status is None or not status.camera_name:
            return PIXEL_EGU
        try:
            calibrated = bool(self._cameras.get_config(status.camera_name).get("camera_calibration"))
        except Exception:  # an unknown camera: its pixels, as the processing falls back to
            return PIXEL_EGU
        return CALIBRATED_EGU if calibrated else PIXEL_EGU

    def _pipeline_image_size(self, status: PipelineStatus | None) -> tuple[ImageFormat, int]:
        """The processed image's format and size as far as known before the first image: its camera's."""
        camera = self._current_status(status.camera_name) if status is not None and status.camera_name else None
        fmt = (_format_of(camera.dtype) if camera else None) or DEFAULT_IMAGE_FORMAT
        return fmt, self._needed_elements(camera) or DEFAULT_IMAGE_ELEMENTS

    def _current_pipeline_status(self, instance_id: str) -> PipelineStatus | None:
        if self._pipeline_service is None:
            return None
        try:
            return self._pipeline_service.status(instance_id)
        except Exception:
            return None

    @staticmethod
    def _check_names(label: str, name: str, pv_name: str, groups: Any) -> None:
        if pv_name != name:
            log.info("%s: served under the PV name %s (the name is too long for 60-character PV names)",
                     label, pv_name)
        if not _PV_NAME_PART.fullmatch(pv_name):
            log.warning("%s: its name has characters EPICS tools may not handle in PV names", label)
        longest = max((len(pv) for group in groups for pv in group.pvdb), default=0)
        if longest > MAX_PV_NAME_LENGTH:
            log.warning("%s: PV names up to %d characters; EPICS tools expect <= %d", label, longest,
                        MAX_PV_NAME_LENGTH)

    async def _remove(self, binding: _Binding) -> None:
        """Stop a camera's or pipeline's tasks and unserve every group it has."""
        tasks = binding.tasks()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        async with self._structure_lock:
            for key in binding.keys():
                await self._unserve(key)
            binding.forget_groups()
        log.info("%s: PVs removed", binding.label)

    async def _ensure_array_capacity(self, binding: _PipelineBinding, needed: int) -> None:
        """Re-create the waveforms if they cannot hold ``needed`` elements (next power of two)."""
        if binding.arrays is None or binding.arrays.capacity(_ARRAY_ATTRS[0]) >= needed:
            return
        async with self._structure_lock:
            old = binding.arrays
            if binding.removed or old is None or old.capacity(_ARRAY_ATTRS[0]) >= needed:
                return
            capacity = old.capacity(_ARRAY_ATTRS[0])
            elements = grown_capacity(capacity, needed)
            new = await asyncio.to_thread(arrays_group, binding.main_key, elements)
            await new.initialise()
            if binding.removed:
                return
            await self._replace(binding.arrays_key, new)
            binding.arrays = new
            log.info("pipeline %s: waveforms re-created for %d elements (were %d)", binding.name, elements,
                     capacity)

    async def _add_out_fields(self, binding: _PipelineBinding, specs: list[PVDef]) -> None:
        async with self._structure_lock:
            if binding.removed or binding.main is None:
                return
            key = f"{binding.main_key}[out{len(binding.out_keys)}]"
            device = OutDevice(tuple(specs))
            group = group_class("PipelineOutGroup", specs)(binding.main_key, device)
            await group.initialise()
            try:
                await self._serve(key, group)
            except KeyError as exc:
                log.error("pipeline %s: output readbacks not served: %s", binding.name, exc)
                return
            binding.out_keys.append(key)
            binding.outs.add(device, specs)
        log.info("pipeline %s: output readbacks added: %s", binding.name, ", ".join(group.pvdb))

    # ================================================================== pipelines: status
    async def _apply_pipeline_status(self, binding: _PipelineBinding, status: PipelineStatus) -> None:
        alarm = self._results_alarm(binding, status)
        assert binding.main is not None  # status is applied only to bindings with groups (ready)
        await cast(PipelineDevice, binding.main.device).apply_status(status, results_alarm=alarm)
        async with self._results_shown:
            self._results_shown.notify_all()
        if alarm is None:
            await self._ensure_array_capacity(binding, needed_array_length(status.arrays))
            specs, refused = binding.outs.new_specs(status.results)
            if refused:
                log.warning("pipeline %s: no Out: readback for %s (name taken or more than the limit)",
                            binding.name, ", ".join(refused))
            if specs:
                await self._add_out_fields(binding, specs)
        if binding.arrays is not None:
            await cast(ArraysDevice, binding.arrays.device).apply(status.arrays, alarm, status.timestamp,
                                                                  binding.arrays.capacity(_ARRAY_ATTRS[0]))
        await binding.outs.apply(status.results, alarm, status.timestamp)

    @staticmethod
    def _results_alarm(binding: _PipelineBinding, status: PipelineStatus) -> Alarm | None:
        """None if the status carries valid results; else the result readbacks' alarm."""
        fresh = status.results and status.results is not binding.stale_results
        if not status.running or not fresh or status.error:
            return NO_DATA
        return None

    # ================================================================== cameras: structure
    async def _add_camera(self, binding: _CameraBinding) -> None:
        async with self._structure_lock:
            if binding.removed:
                return
            status = self._current_status(binding.name)
            fmt = (_format_of(status.dtype) if status else None) or DEFAULT_IMAGE_FORMAT
            elements = self._needed_elements(status) or DEFAULT_IMAGE_ELEMENTS
            driver, image = await asyncio.to_thread(self._build_camera_groups, binding, fmt, elements)
            if binding.removed:
                return
            await driver.initialise()
            await image.initialise()
            await self._serve(binding.driver_key, driver)
            await self._serve(binding.image_key, image)
            binding.driver, binding.image, binding.image_format = driver, image, fmt
        self._apply_publishing(binding)
        if binding.pending_status is None:
            binding.pending_status = status
        try:
            await cast(CameraDevice, driver.device).apply_config(self._cameras.get_config(binding.name))
        except Exception as exc:
            log.warning("camera %s: cannot read its config: %s", binding.name, exc)
        self._kick_status(binding)
        self._kick_image(binding)
        self._check_names(binding.label, binding.name, binding.pv_name, (driver, image))

    def _build_camera_groups(self, binding: _CameraBinding, fmt: ImageFormat, elements: int):
        # Runs in a worker thread: pure object creation, touches nothing the loop uses.
        driver = CameraDriverGroup(binding.driver_key, CameraDevice(binding.name, self._cameras, port=binding.pv_name,
                                                                    plugins=self._wait_for_plugins))
        return driver, self._build_image_group(binding, fmt, elements)

    def _build_image_group(self, binding: _Binding, fmt: ImageFormat, elements: int) -> DeviceGroup:
        device = ImageDevice(lambda enabled, period: self._set_publishing(binding, enabled, period),
                             enabled=binding.enabled, min_period=binding.min_period,
                             port=binding.image_key[len(self.prefix):].rstrip(":"), source_port=binding.pv_name)
        return image_group(binding.image_key, device, fmt, elements)

    async def _ensure_image_capacity(self, binding: _Binding, fmt: ImageFormat, elements: int) -> None:
        """Re-create the image block if it cannot hold ``elements`` pixels of ``fmt``."""
        if self._image_fits(binding, fmt, elements):
            return
        async with self._structure_lock:
            if binding.removed or binding.image is None or self._image_fits(binding, fmt, elements):
                return
            old, old_format = binding.image, binding.image_format
            capacity = old.capacity("array_data")
            elements = max(elements, capacity)  # never shrink: capacity costs no memory
            new = await asyncio.to_thread(self._build_image_group, binding, fmt, elements)
            await new.initialise()
            if binding.removed:
                return
            await self._replace(binding.image_key, new)
            binding.image, binding.image_format = new, fmt
            log.info("%s: image PVs re-created for %s x %d elements (were %s x %d)", binding.label,
                     fmt.ftvl, elements, old_format.ftvl if old_format else "?", capacity)

    @staticmethod
    def _image_fits(binding: _Binding, fmt: ImageFormat, elements: int) -> bool:
        current = binding.image_format
        return (binding.image is not None and current is not None and current.ftvl == fmt.ftvl
                and binding.image.capacity("array_data") >= elements)

    @staticmethod
    def _needed_elements(status: CameraStatus | None) -> int:
        if status is None:
            return 0
        return max(int(status.sensor_width) * int(status.sensor_height), int(status.width) * int(status.height))

    def _current_status(self, name: str) -> CameraStatus | None:
        try:
            return self._cameras.status(name)
        except Exception:
            return None

    async def _drain_structural(self) -> None:
        while True:
            pending = [task for task in self._tasks if task.get_name().startswith("structural:")]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    # ================================================================== cameras: status
    def _kick_status(self, binding: _Binding) -> None:
        if not binding.ready or binding.status_task is not None or binding.pending_status is None:
            return
        binding.status_task = self._spawn(self._status_loop(binding), f"status {binding.label}")

    async def _status_loop(self, binding: _Binding) -> None:
        loop = asyncio.get_running_loop()
        try:
            while binding.pending_status is not None and not binding.removed:
                wait = binding.last_status + self._status_period - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                status, binding.pending_status = binding.pending_status, None
                binding.last_status = loop.time()
                if isinstance(binding, _PipelineBinding):
                    await self._apply_pipeline_status(binding, status)
                else:
                    assert isinstance(binding, _CameraBinding)  # the only other kind of binding
                    await self._apply_status(binding, status)
        finally:
            binding.status_task = None

    async def _apply_status(self, binding: _CameraBinding, status: CameraStatus) -> None:
        fmt = _format_of(status.dtype)
        assert binding.driver is not None  # status is applied only to bindings with groups (ready)
        device = cast(CameraDevice, binding.driver.device)
        await device.apply_status(status, fmt.data_type if fmt else None)
        try:
            config = self._cameras.get_config(binding.name)
        except Exception as exc:  # e.g. deleted meanwhile: the removal event follows
            log.debug("camera %s: no config: %s", binding.name, exc)
        else:
            await device.apply_config(config)
        if fmt is not None and self._needed_elements(status):
            await self._ensure_image_capacity(binding, fmt, self._needed_elements(status))

    async def _wait_for_plugins(self, camera: str, pulse_id: int, every_pipeline: bool) -> None:
        """Until the running pipelines of ``camera`` that block it (all of them with ``every_pipeline``:
        ``WaitForPlugins``; else those with ``BlockingCallbacks`` Yes) show results of ``pulse_id``
        or later (their ``UniqueId_RBV``), at most :data:`PLUGIN_WAIT_TIMEOUT` seconds."""
        def waiting() -> list[str]:
            late = []
            for binding in self._pipeline_bindings.values():
                if binding.main is None or not binding.running:
                    continue
                device = cast(PipelineDevice, binding.main.device)
                if device.camera_name != camera or not (every_pipeline or device.blocking):
                    continue
                if device.values["unique_id"] < pulse_id:
                    late.append(binding.name)
            return late

        try:
            async with self._results_shown:
                await asyncio.wait_for(self._results_shown.wait_for(lambda: not waiting()), PLUGIN_WAIT_TIMEOUT)
        except TimeoutError:
            log.warning("camera %s: pipelines %s have no results of pulse id %d after %.0f s", camera,
                        ", ".join(waiting()), pulse_id, PLUGIN_WAIT_TIMEOUT)

    # ================================================================== cameras: images
    def _kick_image(self, binding: _Binding) -> None:
        if binding.image is None or binding.image_task is not None or binding.pending_image is None:
            return
        binding.image_task = self._spawn(self._image_loop(binding), f"image {binding.label}")

    async def _image_loop(self, binding: _Binding) -> None:
        try:
            while binding.pending_image is not None and not binding.removed:
                snapshot, binding.pending_image = binding.pending_image, None
                if binding.enabled:
                    await self._publish_image(binding, snapshot)
        finally:
            binding.image_task = None

    async def _publish_image(self, binding: _Binding, snapshot: ImageSnapshot) -> None:
        image = snapshot.image
        if image.ndim != 2:
            log.warning("%s: only 2-D images are published on CA, got shape %s", binding.label, image.shape)
            return
        try:
            fmt = image_format(image.dtype)
        except ValueError as exc:
            log.warning("%s: %s", binding.label, exc)
            return
        if not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
        if image.flags.writeable:
            image = image.view()
            image.flags.writeable = False  # caproto keeps read-only arrays without copying
        await self._ensure_image_capacity(binding, fmt, image.size)
        if binding.image is None or binding.removed:
            return
        binding.images_published += 1
        if isinstance(binding, _PipelineBinding) and binding.main is not None:
            await binding.main.device.post("data_type", fmt.data_type)
        await cast(ImageDevice, binding.image.device).publish(
            image, fmt, pulse_id=snapshot.pulse_id, timestamp=snapshot.timestamp, counter=binding.images_published,
            attributes=self._image_axes(binding, image.shape))

    def _image_axes(self, binding: _Binding, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """The calibrated axes of an image (``x_axis``/``y_axis``) if they fit its shape, else none:
        a pipeline's are its last axis outputs, a camera's come from its calibration."""
        axes: dict[str, Any] = {}
        if isinstance(binding, _PipelineBinding) and binding.arrays is not None:
            values = binding.arrays.device.values
            axes = {"x_axis": values.get("axis_x"), "y_axis": values.get("axis_y")}
        elif isinstance(binding, _CameraBinding) and binding.driver is not None:
            device = cast(CameraDevice, binding.driver.device)
            axes = calibrated_axes(device.config_in_force, device.values["max_size_x"], device.values["max_size_y"])
        height, width = shape[:2]
        x_axis, y_axis = axes.get("x_axis"), axes.get("y_axis")
        if (x_axis is not None and y_axis is not None and np.ndim(x_axis) == 1 and np.ndim(y_axis) == 1
                and len(x_axis) == width and len(y_axis) == height):
            return {"x_axis": x_axis, "y_axis": y_axis}
        return {}

    def _set_publishing(self, binding: _Binding, enabled: bool, min_period: float) -> None:
        # Called by the image group's putters: the service validates (raising refuses the put).
        binding.set_publishing(binding.name, bool(enabled), float(min_period))
        binding.enabled, binding.min_period = bool(enabled), float(min_period)
        if not enabled:
            binding.pending_image = None

    def _apply_publishing(self, binding: _Binding) -> None:
        try:
            binding.set_publishing(binding.name, binding.enabled, binding.min_period)
        except Exception as exc:
            log.warning("%s: cannot set image publishing: %s", binding.label, exc)

    # ================================================================== service block
    async def _stop_all(self) -> None:
        await self._cameras.stop_all()
        if self._pipeline_service is not None:
            await self._pipeline_service.stop_all()
        self._request_service_refresh()

    def _request_service_refresh(self) -> None:
        self._service_refresh_pending = True
        if self._service is None or self._service_task is not None or self._stopped:
            return
        self._service_task = self._spawn(self._service_loop(), "service lists")

    async def _service_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._service_refresh_pending:
                wait = self._last_service_refresh + self._status_period - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._service_refresh_pending = False
                self._last_service_refresh = loop.time()
                await self._refresh_lists()
        finally:
            self._service_task = None

    async def _refresh_lists(self) -> None:
        cameras = list(self._cameras.camera_names())
        instances = list(self._cameras.active_instances())
        pipelines: list[str] = []
        if self._pipeline_service is not None:
            pipelines = list(self._pipeline_service.pipeline_names())
            instances += list(self._pipeline_service.active_instances())
        pv_names = ({b.name: b.pv_name for b in self._bindings.values()},
                    {b.name: b.pv_name for b in self._pipeline_bindings.values()})
        await self._service_device.update_lists(cameras, pipelines, instances, pv_names)

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        while True:
            next_beat += HEARTBEAT_PERIOD
            await asyncio.sleep(max(0.0, next_beat - loop.time()))
            self._heartbeat += 1
            try:
                await self._service_device.update_health(self._heartbeat)
                await self._update_worker_health()
            except Exception:
                log.exception("heartbeat update failed")
            self._request_service_refresh()

    async def _update_worker_health(self) -> None:
        """Every camera's and pipeline's worker health PVs, once per heartbeat (model.health)."""
        cameras = self._cameras.worker_health()
        for binding in list(self._bindings.values()):
            if binding.driver is not None and not binding.removed:
                await apply_worker_health(binding.driver.device, cameras.get(binding.name))
        pipelines = self._pipeline_service.worker_health() if self._pipeline_service is not None else {}
        for pipeline in list(self._pipeline_bindings.values()):
            if pipeline.main is not None and not pipeline.removed:
                await apply_worker_health(pipeline.main.device, pipelines.get(pipeline.name))

    # ================================================================== transports
    def add_transport(self, transport: Transport) -> None:
        """Serve every block over ``transport`` too (register before :meth:`start`)."""
        self._transports.append(transport)

    async def _serve(self, key: str, group: DeviceGroup) -> None:
        self._registry.add(key, group)
        await self._announce(key, group)

    async def _replace(self, key: str, group: DeviceGroup) -> None:
        await self._registry.replace(key, group)
        await self._announce(key, group)

    async def _unserve(self, key: str) -> None:
        await self._registry.remove(key)
        for transport in self._transports:
            try:
                await transport.remove_block(key)
            except Exception:
                log.exception("%s: removing block %s failed", type(transport).__name__, key)

    async def _announce(self, key: str, group: DeviceGroup) -> None:
        # a transport failing must not take CA (or the other transports) down
        for transport in self._transports:
            try:
                await transport.add_block(key, group.prefix, group.device)
            except Exception:
                log.exception("%s: serving block %s failed", type(transport).__name__, key)

    # ================================================================== tasks
    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str, *, structural: bool = False) -> asyncio.Task:
        name = f"structural:{what}" if structural else what
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("IOC task %r failed", task.get_name(), exc_info=error)


__all__ = ["CamiocIoc"]
