"""``camioc check <config dir>``: every config file validated as the server would, before it runs.

A broken camera or pipeline file does not stop the server: it is logged when something asks for
it, and the camera or pipeline is missing from lists, PVs and screens. An operator who edits files
by hand (or a deployment that ships them) wants to know before the restart. This module walks a
configuration folder (cam_server's layout, :class:`~camioc.config.store.ConfigLayout`) and runs
the checks the server runs when it loads, saves and starts a config — the same functions, not a
copy of them:

* the file parses (JSON/YAML, a mapping): :meth:`ConfigStore.load <camioc.config.store.ConfigStore.load>`;
* a camera validates (:meth:`CameraConfig.from_dict <camioc.config.camera.CameraConfig.from_dict>`:
  types, ranges, unsupported cam_server options), a pipeline as ``save_config`` does it
  (:func:`~camioc.config.pipeline.client_config`, :meth:`PipelineConfig.from_dict
  <camioc.config.pipeline.PipelineConfig.from_dict>`, :func:`~camioc.core.pipeline_inputs.check_input_config`
  with the server's ``--data-dir``, ``--dispatcher-url`` and ``--no-user-scripts``);
* what a config names exists: a pipeline's camera (name or alias) and its input/output pipelines,
  a background that is subtracted (``background_config/<id>.npy``, loadable), a user function file.

Unknown keys are kept by the server (cam_server compatibility: a user function reads its own keys
from the config), so they are warnings — except a key that is one typo away from a known key
(``mirorr_x``), which would silently do nothing: that is an error. ``strict`` makes every warning
an error.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from camioc.config.camera import UNSUPPORTED_KEYS as CAMERA_UNSUPPORTED
from camioc.config.camera import CameraConfig, camera_aliases
from camioc.config.names import is_valid_name
from camioc.config.pipeline import UNSUPPORTED_KEYS as PIPELINE_UNSUPPORTED
from camioc.config.pipeline import PipelineConfig, client_config
from camioc.config.store import CONFIG_SUFFIXES, RESERVED_NAMES, RESERVED_SUFFIXES, ConfigLayout, ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.merge import IMAGE_PIPELINE_TYPES
from camioc.core.pipeline_inputs import check_input_config
from camioc.errors import ConfigError, NotFoundError
from camioc.processing.functions import builtin_name, function_file
from camioc.processing.parameters import BackgroundMode, ProcessingParameters

Severity = Literal["error", "warning"]

#: Pipeline types whose input is a camera unless ``input_pipeline``/``input_stream`` says otherwise.
CAMERA_INPUT_TYPES = ("processing", "store", "fanout", "custom", "script")
#: How close an unknown key must be to a known one to count as a typo (difflib ratio).
TYPO_CUTOFF = 0.85


@dataclass(frozen=True)
class Finding:
    """One problem of one file: ``path`` relative to the checked folder when inside it."""

    path: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.severity}: {self.message}"


@dataclass
class CheckReport:
    """What :func:`check_config_dir` found; ``ok`` when there is no error."""

    base: Path
    findings: list[Finding] = field(default_factory=list)
    cameras: int = 0
    pipelines: int = 0
    backgrounds: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def bad_files(self) -> list[str]:
        """The files with at least one error, in the order found."""
        return list(dict.fromkeys(f.path for f in self.errors))

    def summary(self) -> str:
        counts = (
            f"{self.cameras} camera(s), {self.pipelines} pipeline(s), {self.backgrounds} background(s) in {self.base}"
        )
        if self.ok:
            extra = f", {len(self.warnings)} warning(s)" if self.warnings else ""
            return f"OK: {counts}{extra}"
        return f"FAILED: {len(self.bad_files())} bad file(s) ({len(self.errors)} error(s)); checked {counts}"


@dataclass(frozen=True)
class CheckOptions:
    """The server options that change what a config may say (as ``camioc`` is started)."""

    data_dir: Path | None = None  # None: ``data`` beside the folder, as the server's default
    dispatcher_url: str | None = None
    user_scripts: bool = True
    strict: bool = False


def check_config_dir(base: Path, options: CheckOptions | None = None) -> CheckReport:
    """Check every config file under ``base``; never raises for what a file holds."""
    from camioc.config.paths import default_data_dir

    options = options or CheckOptions()
    base = Path(base)
    report = _Checker(base, options, options.data_dir or default_data_dir(base.resolve())).run()
    if options.strict:
        report.findings = [Finding(f.path, "error", f.message) for f in report.findings]
    return report


class _Checker:
    def __init__(self, base: Path, options: CheckOptions, data_dir: Path) -> None:
        self.layout = ConfigLayout(base)
        self.options = options
        self.data_dir = data_dir
        self.report = CheckReport(base)
        self.backgrounds = BackgroundStore(self.layout.background_config)
        self.cameras: dict[str, CameraConfig] = {}
        self.broken_cameras: set[str] = set()

    # ----------------------------------------------------------------------------------------
    def run(self) -> CheckReport:
        base = self.layout.base
        if not base.is_dir():
            self._add(base, "error", "not a folder (give the folder that holds camera_config/ and pipeline_config/)")
            return self.report
        if not self.layout.camera_config.is_dir() and not self.layout.pipeline_config.is_dir():
            self._add(base, "error", "holds neither camera_config/ nor pipeline_config/: not a camioc config folder")
            return self.report
        self.report.backgrounds = self._check_backgrounds()
        camera_store = self.layout.camera_store()
        for name, path in self._config_files(camera_store):
            self._check_camera(camera_store, name, path)
        self.aliases = camera_aliases(self.cameras[n] for n in sorted(self.cameras))
        pipeline_store = self.layout.pipeline_store()
        self.pipeline_names = set(pipeline_store.names())
        for name, path in self._config_files(pipeline_store):
            self._check_pipeline(pipeline_store, name, path)
        return self.report

    def _add(self, path: Path, severity: Severity, message: str) -> None:
        self.report.findings.append(Finding(_shown(path, self.layout.base), severity, message))

    def _config_files(self, store: ConfigStore) -> Iterable[tuple[str, Path]]:
        """The files the server loads, by name; reports the files of the folder it would skip."""
        if not store.folder.is_dir():
            return []
        loaded: list[tuple[str, Path]] = []
        seen: dict[str, Path] = {}
        for path in sorted(
            store.folder.iterdir(),
            key=lambda p: (p.stem, CONFIG_SUFFIXES.index(p.suffix) if p.suffix in CONFIG_SUFFIXES else 99),
        ):
            if path.name.startswith("."):
                if path.name.endswith(".tmp"):
                    self._add(path, "warning", "left by an interrupted save (camioc removes it at start)")
                continue
            if path.suffix not in CONFIG_SUFFIXES or not path.is_file():
                continue
            name = path.stem
            if name in RESERVED_NAMES or name.endswith(RESERVED_SUFFIXES):
                continue  # cam_server's manager files, not configs
            if not is_valid_name(name):
                self._add(path, "error", f"not loaded: {name!r} is not a valid {store.kind} name")
                continue
            if name in seen:
                self._add(path, "warning", f"ignored: {seen[name].name} has the same name and wins")
                continue
            seen[name] = path
            loaded.append((name, path))
        return loaded

    def _load(self, store: ConfigStore, name: str, path: Path) -> dict[str, Any] | None:
        try:
            raw = dict(store.load(name))
        except (ConfigError, NotFoundError) as exc:
            self._add(path, "error", _without_file_prefix(str(exc), path))
            return None
        given = raw.get("name")
        if given is not None and given != name:
            self._add(path, "warning", f"'name' is {given!r}: the server uses the file name, {name!r}")
        raw["name"] = name
        return raw

    def _unknown_keys(self, path: Path, raw: Mapping[str, Any], known: Iterable[str]) -> bool:
        """Report unknown keys; True if one of them is an error (a typo of a known key)."""
        known = sorted(set(known))
        typo = False
        for key in raw:
            if key in known or key.startswith(("_", "#")):
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=TYPO_CUTOFF)
            if close:
                typo = True
                self._add(path, "error", f"unknown key '{key}': did you mean '{close[0]}'? (as written it is ignored)")
            else:
                self._add(
                    path, "warning", f"unknown key '{key}' (kept, not used by camioc; a user function may read it)"
                )
        return typo

    # ----------------------------------------------------------------------------------------
    def _check_backgrounds(self) -> int:
        folder = self.layout.background_config
        count = 0
        if not folder.is_dir():
            return 0
        for path in sorted(folder.glob("*.npy")):
            count += 1
            try:
                self.backgrounds.load(path.stem)
            except (ConfigError, NotFoundError, ValueError) as exc:
                self._add(path, "error", f"not a loadable background image: {exc}")
        return count

    def _background_ref(self, path: Path, background_id: Any, enabled: bool) -> None:
        if background_id is None or background_id == "":
            if enabled:
                self._add(path, "warning", "background subtraction is on but no 'image_background' is set")
            return
        text = str(background_id)
        try:
            exists = self.backgrounds.exists(text)
        except ValueError as exc:
            self._add(path, "error", f"'image_background': {exc}")
            return
        if not exists:
            where = self.layout.background_config / f"{text}.npy"
            self._add(
                path,
                "error" if enabled else "warning",
                f"'image_background' names '{text}', but there is no {_shown(where, self.layout.base)}",
            )

    def _check_camera(self, store: ConfigStore, name: str, path: Path) -> None:
        self.report.cameras += 1
        raw = self._load(store, name, path)
        if raw is None:
            self.broken_cameras.add(name)
            return
        try:
            config = CameraConfig.from_dict(raw)
        except ConfigError as exc:
            self._add(path, "error", str(exc))
            self.broken_cameras.add(name)
            return
        self.cameras[name] = config
        self._unknown_keys(path, raw, CameraConfig.known_keys() | set(CAMERA_UNSUPPORTED))
        if config.image_background:
            self._background_ref(path, config.image_background, enabled=True)

    def _check_pipeline(self, store: ConfigStore, name: str, path: Path) -> None:
        self.report.pipelines += 1
        raw = self._load(store, name, path)
        if raw is None:
            return
        try:
            typed = PipelineConfig.from_dict(client_config(raw))
            effective = typed.to_dict()
            background_on = ProcessingParameters.of(typed).background_mode is not BackgroundMode.OFF
            scripts = self.layout.user_scripts
            check_input_config(
                effective,
                dispatcher_url=self.options.dispatcher_url,
                libs_dir=scripts / "lib",
                scripts_dir=scripts,
                data_dir=self.data_dir,
                user_scripts=self.options.user_scripts,
            )
        except ConfigError as exc:
            self._add(path, "error", str(exc))
            return
        self._unknown_keys(path, raw, PipelineConfig.known_keys() | set(PIPELINE_UNSUPPORTED))
        self._check_pipeline_refs(path, name, effective, background_on)

    def _check_pipeline_refs(self, path: Path, name: str, config: Mapping[str, Any], background_on: bool) -> None:
        pipeline_type = str(config.get("pipeline_type") or "processing")
        for key in ("input_pipeline", "output_pipeline"):
            target = config.get(key)
            if target and str(target) not in self.pipeline_names:
                self._add(
                    path,
                    "warning",
                    f"'{key}' names '{target}', which is not a saved pipeline: it must be "
                    "a running instance when this pipeline starts",
                )
            elif target and str(target) == name:
                self._add(path, "error", f"'{key}' names the pipeline itself")
        camera = str(config.get("camera_name") or "")
        reads_camera = (
            pipeline_type in CAMERA_INPUT_TYPES and not config.get("input_pipeline") and not config.get("input_stream")
        )
        if reads_camera and camera:
            target = camera if camera in self.cameras or camera in self.broken_cameras else self.aliases.get(camera)
            if target is None:
                self._add(
                    path,
                    "error",
                    f"'camera_name' names '{camera}', which is no camera (no "
                    f"camera_config/{camera}.json and no camera alias)",
                )
            elif target in self.broken_cameras:
                self._add(path, "error", f"'camera_name' names '{camera}', whose config file is broken (see it)")
        if pipeline_type in IMAGE_PIPELINE_TYPES:
            self._background_ref(path, config.get("image_background"), background_on)
        function = config.get("function")
        if isinstance(function, str) and function.strip() and builtin_name(function) is None:
            if not self.options.user_scripts:
                return  # refused above by check_input_config already
            try:
                found = function_file(function, self.layout.user_scripts)
            except Exception as exc:  # noqa: BLE001 - ProcessingError: reported as the server reports it
                self._add(path, "error", str(exc))
                return
            if found is None:
                self._add(
                    path,
                    "error",
                    f"'function' names '{function}': no such file in "
                    f"{_shown(self.layout.user_scripts, self.layout.base)}/ and no built-in",
                )


def _shown(path: Path, base: Path) -> str:
    """``path`` relative to the checked folder (the folder itself by its name as given)."""
    if path == base:
        return str(base)
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _without_file_prefix(message: str, path: Path) -> str:
    """The store's messages name the file; the report already does."""
    prefix = f"Config file '{path}' "
    return message[len(prefix) :] if message.startswith(prefix) else message


def format_report(report: CheckReport) -> str:
    """The lines ``camioc check`` prints: one per finding, then the summary."""
    lines = [str(f) for f in report.findings]
    lines.append(report.summary())
    return "\n".join(lines)


def report_json(report: CheckReport) -> str:
    """The report as JSON (``camioc check --json``), for deployment scripts."""
    return json.dumps(
        {
            "ok": report.ok,
            "base": str(report.base),
            "cameras": report.cameras,
            "pipelines": report.pipelines,
            "backgrounds": report.backgrounds,
            "findings": [f.__dict__ for f in report.findings],
        },
        indent=1,
    )


__all__ = ["CheckOptions", "CheckReport", "Finding", "check_config_dir", "format_report", "report_json"]
