"""The production files of ``deploy/`` start camioc with options it accepts.

The systemd unit's ``ExecStart``/``ExecStartPre``, with the example environment file's values
expanded as systemd expands them, parse with camioc's own parsers; systemd itself verifies the unit
(``systemd-analyze verify``, where this machine has systemd). The procServ launcher is run with a
stand-in ``procServ`` and ``camioc`` that record their arguments: the camioc command procServ would
run parses too, and the environment file's values reach it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from camioc.cli import build_check_parser, build_parser
from tests.support.server import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "camioc.service"
ENV_FILE = DEPLOY / "systemd" / "camioc.env"
LAUNCHER = DEPLOY / "procServ" / "st.camioc"


def environment_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines as systemd reads them (double quotes removed, comments skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return values


def unit_commands(path: Path) -> dict[str, str]:
    """The unit's settings (continuation lines joined); the last one of a key wins."""
    text = path.read_text().replace("\\\n", " ")
    return dict(re.findall(r"^(\w+)=(.*)$", text, re.M))


def systemd_argv(command: str, env: dict[str, str]) -> list[str]:
    """systemd's expansion: ``${VAR}`` is one word, ``$VAR`` is split on white space."""
    words: list[str] = []
    for word in shlex.split(command.lstrip("-")):
        if re.fullmatch(r"\$\w+", word):
            words += env.get(word[1:], "").split()
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def test_the_unit_starts_camioc_with_options_it_accepts() -> None:
    env = environment_file(ENV_FILE)
    unit = unit_commands(UNIT)
    start = systemd_argv(unit["ExecStart"], env)
    assert start[0] == "/opt/camioc/bin/camioc"
    args = build_parser().parse_args(start[1:])
    assert args.base == Path("/var/lib/camioc/configs") and args.put_log == Path("/var/log/camioc/puts.log")
    assert args.interface == "0.0.0.0" and args.hostname == "localhost" and args.prefix == "CAMIOC:"
    check = systemd_argv(unit["ExecStartPre"], env)
    assert check[:2] == ["/opt/camioc/bin/camioc", "check"]
    assert build_check_parser().parse_args(check[2:]).base == args.base
    assert unit["KillSignal"] == "SIGTERM"  # camioc's clean stop (as SIGINT)


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    camioc = shutil.which("camioc", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("camioc")
    assert camioc, "the camioc console script is installed with the package"
    for unit in (UNIT, DEPLOY / "procServ" / "camioc-procserv.service"):
        text = unit.read_text().replace("/opt/camioc/bin/camioc", camioc)
        text = text.replace("/opt/camioc/bin/st.camioc", str(LAUNCHER)).replace("/etc/camioc/camioc.env", str(ENV_FILE))
        copy = tmp_path / unit.name
        copy.write_text(text)
        assert "[Service]" in text and "ExecStart=" in text
        if analyze is None:  # no systemd on this machine: the parse test above still holds
            continue
        result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
        problems = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
        assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_procserv_launcher_runs_camioc_under_procserv(tmp_path: Path) -> None:
    record = tmp_path / "calls"
    for tool in ("procServ", "camioc"):
        stand_in = tmp_path / tool
        stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" "{tool}" "$@" "--end--" >> "{record}"\n')
        stand_in.chmod(0o755)
    env_file = tmp_path / "camioc.env"
    env_file.write_text(
        ENV_FILE.read_text() + f"\nCAMIOC={tmp_path / 'camioc'}\nPROCSERV_LOG={tmp_path / 'console.log'}\n"
    )
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["sh", str(LAUNCHER), str(env_file)], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    calls = [call.strip("\n").split("\n") for call in record.read_text().split("--end--") if call.strip()]
    (check, procserv) = calls
    assert check[:3] == ["camioc", "check", "/var/lib/camioc/configs"]
    assert procserv[0] == "procServ" and "--killsig" in procserv and procserv[procserv.index("--killsig") + 1] == "15"
    command = procserv[procserv.index(str(tmp_path / "camioc")) :]
    args = build_parser().parse_args(command[1:])
    assert args.put_log == Path("/var/log/camioc/puts.log") and args.hostname == "localhost"
    assert procserv[procserv.index(str(tmp_path / "camioc")) - 1] == "4051"  # the console port
