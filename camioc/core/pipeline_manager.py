"""Pipeline configurations, pipeline instances and backgrounds: the pipeline half of the domain.

Semantics (compat §5 and 'camioc decisions'):

- **Shared** instances have the id of a saved pipeline, are created by asking for that id's stream
  (``GET /instance/<name>``, ``EnableCallbacks`` on its PVs) and are read-only.
- **Private** instances (``POST /pipeline[/<name>]``) get the given or a uuid4 id and are writable
  unless their config says ``"read_only": true``. Ids are unique among running instances.
- ``POST /instance/`` reuses a running read-only instance whose effective config is equal.
- Stopped instances are deleted (their id and port are free again); their exit code is kept.
- Config updates of a running instance merge (``image_good_region``/``image_slices`` sub-dicts) and
  are validated here, then applied by the worker within a few frames.
- Two forms of every config: the worker and the IOC use the *effective* config (typed defaults,
  runtime defaults, the instance ``name``); REST clients get cam_server's expansion of what the
  user gave (:func:`~camioc.config.pipeline.client_config`), which is also what is saved.

Wiring (decided here, workers only see addresses): a processing/store/fanout pipeline reads its
camera's stream (starting the camera); ``input_pipeline`` reads another instance's stream,
``input_stream`` any bsread address; ``stream`` pipelines read ``bsread_address``; a ``fanin``
binds a PULL input that ``output_pipeline`` workers PUSH into, and publishes in pulse-id order.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from camioc.config._fields import merge_changes
from camioc.config.names import validate_name
from camioc.config.pipeline import MERGED_SECTIONS, PipelineConfig, client_config, merge_update, pipeline_groups
from camioc.config.store import ConfigStore
from camioc.core.api import CameraStatus, DetectorState, ImageSnapshot, PipelineEvents, PipelineStatus
from camioc.core.backgrounds import DEFAULT_N_IMAGES, BackgroundStore, collect_background_image
from camioc.core.camera_manager import CameraManager
from camioc.core.instances import Instance, InstanceManager, Supervision, exit_state
from camioc.core.merge import channel_list
from camioc.core.pipeline_inputs import check_input_config
from camioc.core.pipeline_worker import PipelineWorkerOptions, run_pipeline_worker
from camioc.core.worker import WorkerHandle
from camioc.errors import (
    CameraOfflineError,
    ConfigError,
    InstanceError,
    NotFoundError,
    ReadOnlyError,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
BACKGROUND_TIMEOUT_PER_IMAGE = 2.0
CAMERA_TYPES = ("processing", "store", "fanout", "custom", "script")
MAX_EXIT_CODES = 1000
#: After a camera stopped under a running pipeline and was restarted for it, a further stop within
#: this time is left to the worker's ``camera_timeout`` (no restart storm for a crashing camera).
CAMERA_RESTART_HOLDOFF = 5.0


class _PipelineInstance(Instance):
    def __init__(self, instance_id: str, config: dict[str, Any], read_only: bool,
                 shown: dict[str, Any] | None = None) -> None:
        super().__init__(instance_id)
        self.instance_id = instance_id
        self.config = config  # effective: what the worker runs with
        self.shown = shown if shown is not None else dict(config)  # what REST clients see
        self.read_only = read_only
        self.input_address = ""
        self.clients = 0
        self.camera_input = ""  # the camera whose stream this instance reads ("" for other inputs)
        self.last_camera_restart = float("-inf")
        self.input_statistics: dict[str, int] = {}  # merge, enforce_pid, stream_timeout counters
        self.output_statistics: dict[str, Any] = {}  # total_bytes, header_changes, frame_shape
        self.received = 0  # messages received from the input (the rx count)
        # PipelineStatus.error = the worker's own error (status messages) or else the processing
        # error of the latest results (notify_on_error frames); neither source clears the other.
        self.worker_error = ""
        self.results_error = ""

    @property
    def camera_name(self) -> str:
        return str(self.config.get("camera_name") or "")


class PipelineManager(InstanceManager[_PipelineInstance, PipelineStatus]):
    """The pipeline service used by the IOC and the pipeline REST API."""

    kind = "pipeline"

    def __init__(
        self,
        store: ConfigStore,
        cameras: CameraManager,
        backgrounds: BackgroundStore,
        *,
        hostname: str,
        bind_host: str = "127.0.0.1",
        port_range: tuple[int, int] = (11100, 11201),
        scripts_dir: Path | None = None,
        start_timeout: float = START_TIMEOUT,
        log_level: int = logging.INFO,
        dispatcher_url: str | None = None,
        data_dir: Path | None = None,
        user_scripts: bool = True,
        supervision: Supervision | None = None,
        private_timeout: float | None = None,
    ) -> None:
        """``data_dir`` (``--data-dir``): the only folder ``mode: FILE`` outputs write in (None:
        FILE outputs are refused); ``user_scripts=False`` (``--no-user-scripts``): only built-in
        functions, no libs (see :func:`~camioc.core.pipeline_inputs.check_input_config`);
        ``private_timeout`` (``--private-instance-timeout``): the ``no_client_timeout`` of a private
        instance whose config gives none (None: cam_server's default, 10 s)."""
        super().__init__(hostname=hostname, bind_host=bind_host, port_range=port_range,
                         start_timeout=start_timeout, log_level=log_level, supervision=supervision)
        self._store = store
        self._cameras = cameras
        self.backgrounds = backgrounds
        self._scripts_dir = scripts_dir
        self._data_dir = data_dir
        self._user_scripts = user_scripts
        self._dispatcher_url = dispatcher_url  # --dispatcher-url: bsread stream for bsread_channels
        self._private_timeout = private_timeout
        self._exit_codes: dict[str, int | None] = {}
        self._camera_watcher = _CameraWatcher(self)
        cameras.add_listener(self._camera_watcher)

    # ================================================================== saved configs
    def pipeline_names(self) -> list[str]:
        return self._store.names()

    def groups(self) -> dict[str, list[str]]:
        configs = []
        for name in self._store.names():
            try:
                raw = dict(self._store.load(name))
                raw["name"] = name
                configs.append(PipelineConfig.from_dict(raw))
            except ConfigError as exc:
                log.warning("pipeline config %s is invalid: %s", name, exc)
        return pipeline_groups(configs)

    def _load(self, name: str) -> dict[str, Any]:
        """The effective config of a saved pipeline (worker, IOC)."""
        raw = dict(self._store.load(name))
        raw["name"] = name
        return PipelineConfig.from_dict(raw).to_dict()

    def get_config(self, name: str) -> dict[str, Any]:
        """A saved pipeline's config as cam_server answers it: the expansion of the saved file."""
        raw = dict(self._store.load(name))
        PipelineConfig.from_dict(raw, name=name)  # a broken file is reported, not shown
        return client_config(raw)

    async def save_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and save a pipeline config; answers (and stores) cam_server's expansion of it
        with ``name`` set to the pipeline name (cam_server's ``save_config`` does the same).

        An empty mapping is expanded first, as in cam_server, so ``{}`` answers "Camera name not
        specified in configuration."; ``None`` (no body) answers "Config object cannot be
        empty.\\nConfig: None".
        """
        validate_name(name, "pipeline name")
        if config is None or not isinstance(config, Mapping):
            raise ConfigError(f"Config object cannot be empty.\nConfig: {config!r}")
        raw = dict(config)
        raw["name"] = name
        shown = client_config(raw)
        self._check_inputs(PipelineConfig.from_dict(shown).to_dict())
        is_new = not self._store.exists(name)
        self._store.save(name, shown)
        if is_new and name not in self._instances:
            self._emit("pipeline_added", name)
        self._refresh_status(name)
        return shown

    async def delete_config(self, name: str) -> None:
        if not self._store.exists(name):
            raise NotFoundError(f"Config '{name}' does not exist.")
        self._store.delete(name)
        if name not in self._instances:
            self._statuses.pop(name, None)
            self._emit("pipeline_removed", name)
        else:
            self._refresh_status(name)

    # ================================================================== instance creation
    async def create_instance(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        pipeline_name: str | None = None,
        instance_id: str | None = None,
        additional_config: Mapping[str, Any] | None = None,
    ) -> tuple[str, str, dict[str, Any]]:
        """A private instance from a config or a saved pipeline (+ additional config).

        Returns ``(instance_id, stream address, config as cam_server shows it)``.
        """
        if pipeline_name is not None:
            if not self._store.exists(pipeline_name):
                raise NotFoundError(f"Pipeline '{pipeline_name}' does not exist.")
            raw = dict(self._store.load(pipeline_name))
            raw["name"] = pipeline_name
            if additional_config:
                raw.update(additional_config)
        elif config:
            raw = dict(config)
        else:
            raise ConfigError("You must specify either the pipeline name or the configuration for the pipeline.")
        if instance_id is not None:
            validate_name(instance_id, "instance id")
        shown = client_config(raw)  # what the user gave: the server's default below is not shown (cam_server)
        return await self._create(self._with_private_timeout(raw), instance_id or str(uuid.uuid4()), shown)

    def _with_private_timeout(self, raw: dict[str, Any]) -> dict[str, Any]:
        """``raw`` with ``--private-instance-timeout`` as its ``no_client_timeout`` if it gives none."""
        if self._private_timeout is None or raw.get("no_client_timeout") is not None:
            return raw
        return {**raw, "no_client_timeout": self._private_timeout}

    async def _create(self, raw: dict[str, Any], instance_id: str,
                      shown: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        raw = dict(raw)
        raw.setdefault("name", instance_id)
        effective = PipelineConfig.from_dict(raw).to_dict()
        read_only = bool(effective.get("read_only", False))
        async with self._lock(instance_id):
            if instance_id in self._instances:
                raise InstanceError(
                    f"Instance with id '{instance_id}' is already present and running. Use another instance_id "
                    "or stop the current instance if you want to reuse the same instance_id."
                )
            stream = await self._start(instance_id, effective, read_only, shown=shown)
        return instance_id, stream, dict(shown)

    async def get_instance_stream(self, instance_id: str, *, hold: bool = False) -> str:
        """The stream of a running instance; starts the shared instance of a saved pipeline.

        ``hold``: keep it running until stopped explicitly, whatever ``no_client_timeout`` says
        (``EnableCallbacks`` 1 on CA).
        """
        async with self._lock(instance_id):
            instance = self._instances.get(instance_id)
            if instance is not None and instance.alive:
                if hold and instance.handle is not None:
                    instance.handle.send("hold", True)
                return instance.stream_address
            if not self._store.exists(instance_id):
                raise NotFoundError(
                    f"Instance '{instance_id}' is not present on server and it is not a saved pipeline name."
                )
            effective = self._load(instance_id)
            return await self._start(instance_id, effective, read_only=True, hold=hold,
                                     shown=self.get_config(instance_id))

    async def get_instance_stream_from_config(self, config: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """Reuse a running read-only instance with an equal effective config, else create one."""
        if not config:
            raise ConfigError("You must specify either the pipeline name or the configuration for the pipeline.")
        shown = client_config(config)
        raw = self._with_private_timeout(dict(config))
        raw["read_only"] = True
        probe_id = str(uuid.uuid4())
        raw.setdefault("name", probe_id)
        effective = PipelineConfig.from_dict(raw).to_dict()
        # One lock per effective config: concurrent equal requests share one instance, and none
        # sees an instance that is still starting (no stream address yet).
        key = "from_config:" + json.dumps({k: v for k, v in effective.items() if k != "name"},
                                          sort_keys=True, default=str)
        async with self._lock(key):
            for instance in self._instances.values():
                if (instance.alive and instance.read_only and instance.stream_address
                        and _same_config(instance.config, effective)):
                    return instance.instance_id, instance.stream_address, dict(instance.shown)
            return await self._create(raw, probe_id, shown)

    async def _start(self, instance_id: str, config: dict[str, Any], read_only: bool, hold: bool = False,
                     *, shown: dict[str, Any]) -> str:
        async def attempt(number: int) -> str:  # a retry wires the instance anew (new ports)
            return await self._start_once(instance_id, config, read_only, hold, shown)

        return await self._start_retrying(instance_id, attempt, fixed_port=bool(config.get("port")))

    async def _start_once(self, instance_id: str, config: dict[str, Any], read_only: bool, hold: bool,
                          shown: dict[str, Any]) -> str:
        instance = _PipelineInstance(instance_id, config, read_only, shown)
        try:
            options = await self._wire(instance)
            options.hold = hold
        except BaseException:
            self._release_ports(instance)  # e.g. a fan-in input port allocated before a later failure
            raise
        # the worker runs on the typed config: validated here once, never re-parsed there
        handle = self._worker(instance_id, run_pipeline_worker, (PipelineConfig.from_dict(config), options))
        self._exit_codes[instance_id] = None
        log.info("starting pipeline %s (%s)", instance_id, config.get("pipeline_type"))

        def failed(exc: InstanceError) -> None:
            self._set_status(instance_id, running=False, state=DetectorState.Error,
                             message=handle.stop_error or "start failed", exit_code=handle.exitcode)
            self._remember_exit_code(instance_id, handle.exitcode)
            if not self._store.exists(instance_id):
                self._emit("pipeline_removed", instance_id)

        launching = self._launch(instance, handle, failed)
        self._instances[instance_id] = instance  # listeners of pipeline_added find it running
        self._set_status(instance_id, running=True, state=DetectorState.Initializing, message="Starting",
                         read_only=read_only, camera_name=instance.camera_name, config=config, exit_code=None,
                         error="")
        self._emit("pipeline_added", instance_id)
        started = await launching
        instance.input_address = started.get("input_address", "")
        self._set_status(instance_id, stream_address=instance.stream_address)
        return instance.stream_address

    def _check_inputs(self, config: Mapping[str, Any]) -> None:
        """Refuse input-side keys camioc cannot honour for this server (bsread_channels without a
        dispatcher, a lib never uploaded, a key of another pipeline type), a function or FILE
        output outside its folder, a user function with user scripts off: see pipeline_inputs."""
        check_input_config(config, dispatcher_url=self._dispatcher_url,
                           libs_dir=self._scripts_dir / "lib" if self._scripts_dir else None,
                           data_dir=self._data_dir, user_scripts=self._user_scripts)

    async def _wire(self, instance: _PipelineInstance) -> PipelineWorkerOptions:
        config = instance.config
        self._check_inputs(config)
        pipeline_type = config.get("pipeline_type", "processing")
        publishing = self._publishing_of(instance.instance_id)
        options = PipelineWorkerOptions(
            instance_id=instance.instance_id, input_address="", bind_host=self._bind_host,
            hostname=self._hostname, scripts_dir=str(self._scripts_dir or "") if self._user_scripts else "",
            data_dir=str(self._data_dir or ""),
            background_dir=str(self.backgrounds.folder), snapshot_enabled=publishing[0],
            snapshot_period=publishing[1],
            log_level=logging.DEBUG if config.get("debug") else self._log_level,
        )
        options.extra["dispatcher_url"] = self._dispatcher_url
        if pipeline_type == "fanin":
            input_port = self._ports.allocate()
            instance.ports.append(input_port)
            options.input_address = f"tcp://{self._bind_host}:{input_port}"
            options.input_mode, options.input_bind = "PULL", True
        elif config.get("input_pipeline"):
            source_id = str(config["input_pipeline"])
            options.input_address = await self.get_instance_stream(source_id)
            source = self._instances.get(source_id)
            source_mode = str(source.config.get("mode") if source else "PUB").upper()
            options.input_mode = str(config.get("input_mode") or ("PULL" if source_mode == "PUSH" else "SUB")).upper()
        elif config.get("input_stream"):
            options.input_address = str(config["input_stream"])
            options.input_mode = str(config.get("input_mode") or "SUB").upper()
        elif pipeline_type == "stream":
            address = config.get("bsread_address")
            dispatcher = config.get("dispatcher_url") or self._dispatcher_url
            from_dispatcher = not address and bool(channel_list(config.get("bsread_channels"))) and dispatcher
            if from_dispatcher:
                address = dispatcher  # checked by _check_inputs: refused without a dispatcher
            if not address:
                raise ConfigError("The following mandatory attributes were not found in the configuration: "
                                  "['bsread_address']")
            options.input_address = str(address)
            default_mode = "SUB" if from_dispatcher else "PULL"
            options.input_mode = str(config.get("bsread_mode") or config.get("input_mode") or default_mode).upper()
        else:
            camera = instance.camera_name
            try:
                options.input_address = await self._cameras.get_stream(camera)
            except (CameraOfflineError, InstanceError) as exc:
                raise InstanceError(f"Camera {camera} is not online. Cannot start pipeline.") from exc
            options.input_mode = "SUB"
            instance.camera_input = camera
        if config.get("output_pipeline"):
            target = self._instances.get(str(config["output_pipeline"]))
            if target is None or not target.alive:
                await self.get_instance_stream(str(config["output_pipeline"]))
                target = self._instances[str(config["output_pipeline"])]
            options.output_address = target.input_address
            options.output_mode = "PUSH"
        elif config.get("output_stream"):
            options.output_address = str(config["output_stream"])
        elif str(config.get("mode") or "PUB").upper() != "FILE":
            fixed = config.get("port")
            if fixed:
                self._ports.reserve(int(fixed))
                port = int(fixed)
            else:
                port = self._ports.allocate()
            instance.ports.append(port)
            options.output_port = port
        return options

    # ================================================================== instance control
    def _get(self, instance_id: str) -> _PipelineInstance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise NotFoundError(f"Instance '{instance_id}' does not exist.")
        return instance

    def instance_config(self, instance_id: str) -> dict[str, Any]:
        """A running instance's config as cam_server shows it (see :func:`client_config`)."""
        return copy.deepcopy(self._get(instance_id).shown)

    async def set_instance_config(self, instance_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into a running instance's config; answers the config as cam_server
        shows it (REST). The caput path (:meth:`update_pipeline`) ends here too."""
        return copy.deepcopy((await self._update_instance(instance_id, changes)).shown)

    async def _update_instance(self, instance_id: str, changes: Mapping[str, Any]) -> _PipelineInstance:
        """Validate and apply a config update of a running instance; both forms are merged the
        cam_server way (sub-sections key by key, other keys replaced)."""
        instance = self._get(instance_id)
        if not changes:
            raise ConfigError("Config updates cannot be empty.")
        if instance.read_only:
            raise ReadOnlyError("Cannot set config on a read only instance.")
        if "camera_name" in changes and changes["camera_name"] != instance.config.get("camera_name"):
            raise ConfigError("Cannot change the camera name on a running instance. Stop the instance first.")
        merged = merge_update(instance.config, changes)
        merged["name"] = instance.config.get("name", instance_id)
        typed = PipelineConfig.from_dict(merged)
        effective = typed.to_dict()
        self._check_inputs(effective)
        instance.shown = client_config(merge_changes(instance.shown, changes, MERGED_SECTIONS))
        instance.config = effective
        if instance.handle is not None:
            instance.handle.send("config", typed)
        self._set_status(instance_id, config=effective)
        return instance

    async def update_pipeline(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The caput path for a pipeline id: the running instance if any, else the saved config.

        Returns the effective config now in force (what the IOC's readbacks show).
        """
        if name in self._instances:
            return dict((await self._update_instance(name, changes)).config)
        if not self._store.exists(name):
            raise NotFoundError(f"Instance '{name}' does not exist.")
        if not changes:
            raise ConfigError("Config updates cannot be empty.")
        await self.save_config(name, merge_update(self.get_config(name), changes))
        return self._load(name)

    def exit_code(self, instance_id: str, *, running_is_error: bool = False) -> int | None:
        """The exit code of a stopped instance (0 completed/stopped, 1 start failure, 2 processing
        error). While it runs: None, or with ``running_is_error`` (the REST route, as cam_server's
        managers answer it) ``InstanceError("Instance '<id>' still running.")``."""
        if instance_id in self._instances:
            if running_is_error:
                raise InstanceError(f"Instance '{instance_id}' still running.")
            return None
        if instance_id not in self._exit_codes:
            raise NotFoundError(f"Instance '{instance_id}' does not exist.")
        return self._exit_codes[instance_id]

    async def stop_instance(self, instance_id: str) -> None:
        """cam_server's name for :meth:`stop` (the pipeline REST route)."""
        await self.stop(instance_id)

    def _on_exited(self, instance: _PipelineInstance, handle: WorkerHandle) -> None:
        instance_id = instance.instance_id
        code = handle.exitcode
        self._remember_exit_code(instance_id, code)
        state, message = exit_state(handle, instance.death)
        error = instance.death or handle.stop_error
        self._set_status(instance_id, running=False, state=state, message=message, stream_address="",
                         frame_rate=0.0, exit_code=code, error=error)
        log.info("pipeline %s stopped: %s", instance_id, message)
        if not instance.death:  # a dead instance stays until deleted or restarted
            self._remove_if_unsaved(instance_id)

    def _on_dead_cleared(self, instance: _PipelineInstance) -> None:
        self._set_status(instance.instance_id, state=DetectorState.Idle, message=f"Stopped ({instance.death})")
        self._remove_if_unsaved(instance.instance_id)

    def _remove_if_unsaved(self, instance_id: str) -> None:
        """A stopped private instance has no PVs and no status any more; a saved pipeline keeps both."""
        if not self._store.exists(instance_id):
            self._emit("pipeline_removed", instance_id)
            self._forget(instance_id)

    def _remember_exit_code(self, instance_id: str, code: int | None) -> None:
        """Keep exit codes of stopped instances for ``/exitcode``, the newest MAX_EXIT_CODES only."""
        self._exit_codes.pop(instance_id, None)
        self._exit_codes[instance_id] = code
        while len(self._exit_codes) > MAX_EXIT_CODES:
            self._exit_codes.pop(next(iter(self._exit_codes)))

    def _forget(self, instance_id: str) -> None:
        """Drop per-id state of a deleted private instance (uuid ids must not accumulate)."""
        self._statuses.pop(instance_id, None)
        self._publishing.pop(instance_id, None)
        self._snapshot_counters.pop(instance_id, None)
        lock = self._locks.get(instance_id)
        if lock is not None and not lock.locked():
            del self._locks[instance_id]

    def _on_status(self, key: str, payload: dict[str, Any]) -> None:
        instance = self._instances.get(key)
        if instance is not None:
            instance.clients = int(payload.get("clients", 0))
            instance.worker_error = str(payload.get("error") or "")
            instance.input_statistics = dict(payload.get("input_statistics") or {})
            instance.output_statistics = dict(payload.get("output_statistics") or {})
            instance.received = int(payload.get("received", instance.received))
            payload["error"] = instance.worker_error or instance.results_error
        self._set_status(key, **payload)

    def _on_message(self, key: str, kind: str, payload: Any) -> None:
        instance_id = key
        if kind == "results":
            error = payload.get("processing_error") or ""
            instance = self._instances.get(instance_id)
            if instance is not None:
                instance.results_error = error
                error = instance.worker_error or error
            self._set_status(instance_id, results=payload["results"], arrays=payload["arrays"],
                             pulse_id=int(payload["pulse_id"]), timestamp=float(payload["timestamp"]),
                             background_ok=not payload.get("processing_error"), error=error)
        elif kind == "camera_request":
            self._spawn(self._reconnect_camera(instance_id, str(payload or "")))

    async def _reconnect_camera(self, instance_id: str, camera: str) -> None:
        """camera_timeout elapsed without frames: (re)start the camera and hand over its address."""
        instance = self._instances.get(instance_id)
        if instance is None or not camera:
            return
        try:
            address = await self._cameras.get_stream(camera)
        except Exception as exc:  # camera still unavailable: the worker asks again after camera_timeout
            log.warning("pipeline %s: camera %s unavailable: %s", instance_id, camera, exc)
            return
        if instance.handle is not None:
            instance.handle.send("camera_stream", address)

    def _camera_instances_changed(self, camera: str) -> None:
        """A camera instance started or stopped. If it stopped while pipelines read it, restart it
        for them now rather than after their ``camera_timeout``: e.g. a camera that stopped for
        lack of clients just after handing its address to a pipeline that was still starting."""
        if camera in self._cameras.running_names:
            return
        now = time.monotonic()
        for instance in list(self._instances.values()):
            if instance.camera_input != camera or not instance.alive:
                continue
            if now - instance.last_camera_restart < CAMERA_RESTART_HOLDOFF:
                continue
            instance.last_camera_restart = now
            log.info("pipeline %s: camera %s stopped; restarting it", instance.instance_id, camera)
            self._spawn(self._reconnect_camera(instance.instance_id, camera))

    # ================================================================== status & info
    def _new_status(self, key: str) -> PipelineStatus:
        return PipelineStatus(instance_id=key)

    def status(self, instance_id: str) -> PipelineStatus:
        if self._shown_instance(instance_id) is None and not self._store.exists(instance_id):
            raise NotFoundError(f"Instance '{instance_id}' does not exist.")
        return self._public_status(instance_id, self._status(instance_id))

    def _public_status(self, instance_id: str, status: PipelineStatus) -> PipelineStatus:
        """With no instance running, a saved pipeline shows its saved config (what a start or a
        config change would use), not the config of its last run, and is not read-only."""
        if instance_id in self._instances or not self._store.exists(instance_id):
            return status
        try:
            config = self._load(instance_id)
        except ConfigError:
            config = {}
        return replace(status, config=config, saved=True, read_only=False,
                       camera_name=str(config.get("camera_name") or ""))

    def _status_extras(self, key: str) -> dict[str, Any]:
        return {"saved": self._store.exists(key)}

    def _published(self, key: str, status: PipelineStatus) -> PipelineStatus:
        return self._public_status(key, status)

    def _refresh_status(self, instance_id: str) -> None:
        try:
            self._emit("pipeline_status", self.status(instance_id))
        except NotFoundError:
            pass

    def ids(self) -> list[str]:
        """Every pipeline id that has PVs: saved pipelines and running instances."""
        return sorted(set(self._store.names()) | set(self._instances) | set(self._dead))

    def running_ids(self) -> list[str]:
        return self.running_names

    def instance_info(self, instance_id: str, /) -> dict[str, Any]:
        instance = self._shown_instance(instance_id)
        if instance is None:
            raise NotFoundError(f"Instance '{instance_id}' does not exist.")
        status = self._status(instance_id)
        statistics = instance.statistics(
            total_bytes=int(instance.output_statistics.get("total_bytes", 0)),
            clients=instance.clients,
            rx=(status.frame_rate, instance.received),
            tx=(status.frame_rate, status.frame_count),
            header_changes=int(instance.output_statistics.get("header_changes", 0)),
            frame_shape=str(instance.output_statistics.get("frame_shape", "")),
        )
        return {
            "stream_address": instance.stream_address,
            "is_stream_active": instance.alive,
            "camera_name": instance.camera_name,
            "config": copy.deepcopy(instance.shown),
            "instance_id": instance_id,
            "read_only": instance.read_only,
            "last_start_time": instance.last_start_time,
            "statistics": {
                **statistics,
                "frames": status.frame_count,
                "dropped": status.dropped,
                "execution_time_ms": status.execution_time_ms,
                "error": status.error,
                **instance.input_statistics,
            },
            **self._dead_fields(instance_id),
        }

    # ================================================================== backgrounds
    async def collect_background(self, camera_name: str, n_images: int | None = None) -> str:
        n = DEFAULT_N_IMAGES if n_images is None else n_images
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError("n_images must be a number.")
        camera = self._cameras.resolve(camera_name)
        address = await self._cameras.get_stream(camera)
        timeout = 5.0 + BACKGROUND_TIMEOUT_PER_IMAGE * n
        image = await asyncio.to_thread(collect_background_image, address, n, timeout)
        background_id = self.backgrounds.new_id(camera)
        await asyncio.to_thread(self.backgrounds.save, background_id, image)
        log.info("background %s collected from %d images", background_id, n)
        return background_id

    def _background_camera(self, camera_name: str) -> str:
        """The camera whose backgrounds are meant: an alias resolves to its camera (collections are
        stored under the camera name); an unknown name is used as given (deleted cameras keep
        their backgrounds)."""
        try:
            return self._cameras.resolve(camera_name)
        except NotFoundError:
            return camera_name

    def latest_background(self, camera_name: str) -> str:
        return self.backgrounds.latest(self._background_camera(camera_name))

    def background_ids(self, camera_name: str) -> list[str]:
        return self.backgrounds.ids(self._background_camera(camera_name))

    async def get_background(self, background_id: str) -> np.ndarray:
        return await asyncio.to_thread(self.backgrounds.load, background_id)

    async def set_background(self, background_id: str, image: np.ndarray, *, overwrite: bool = True) -> str:
        return await asyncio.to_thread(self.backgrounds.save, background_id, image, overwrite=overwrite)

    # ================================================================== CA publishing & events
    def add_listener(self, listener: PipelineEvents) -> None:
        super().add_listener(listener)

    def remove_listener(self, listener: PipelineEvents) -> None:
        super().remove_listener(listener)

    async def close(self) -> None:
        self._cameras.remove_listener(self._camera_watcher)
        await super().close()


class _CameraWatcher:
    """The pipeline manager's camera listener: only ``instances_changed`` matters, the other
    :class:`~camioc.core.api.CameraEvents` are ignored."""

    def __init__(self, manager: PipelineManager) -> None:
        self._manager = manager

    def camera_added(self, name: str) -> None:
        pass

    def camera_removed(self, name: str) -> None:
        pass

    def camera_status(self, status: CameraStatus) -> None:
        pass

    def camera_image(self, snapshot: ImageSnapshot) -> None:
        pass

    def instances_changed(self, name: str) -> None:
        self._manager._camera_instances_changed(name)


def _same_config(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Effective configs equal, ignoring the generated instance name."""
    strip = {"name"}
    return {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}


__all__ = ["PipelineManager"]
