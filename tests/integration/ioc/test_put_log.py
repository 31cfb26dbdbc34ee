"""The put log on a real ``camioc --put-log FILE``: real clients write, the file is read back.

caproto's threading client (which reports the user name it is given), a p4p client and HTTP
each make one accepted write and one refused write; every accepted one is one line naming the
time, the client's address, the user, the PV or route and the value before and after; refused
ones leave no line. A half line left in the file (a crash during a write) does not merge with the
next line.
"""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from caproto.threading.client import Context
from p4p.client.thread import Context as PvaContext
from p4p.client.thread import RemoteError

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until

SIM = "simulation2"
HALF_LINE = "2026-01-01T00:00:00.000+00:00 10.0.0.1 bob ca X:cam1:Rev"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ca_repeater, beacon_sink) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("putlog")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    (folder / "puts.log").write_text(HALF_LINE)  # no newline: what a crash mid-write leaves
    handle = start_camioc(base, folder / "camioc.log", ["--put-log", str(folder / "puts.log")])
    try:
        yield handle
    finally:
        stop_camioc(handle)


def put_lines(server: CamiocServer) -> list[str]:
    return (server.base.parent / "puts.log").read_text().splitlines()


def line_for(server: CamiocServer, needle: str) -> str | None:
    found = [line for line in put_lines(server) if needle in line]
    assert len(found) <= 1, found
    return found[0] if found else None


def fields(line: str) -> tuple[datetime.datetime, list[str], dict[str, object]]:
    """The time, the tokens before ``new=`` and the parsed new/old values of one line."""
    head, _, values = line.partition(" new=")
    time_text, *tokens = head.split(" ")
    decoder = json.JSONDecoder()
    new, end = decoder.raw_decode(values)
    rest = values[end:]
    assert rest.startswith(" old="), line
    old, _ = decoder.raw_decode(rest[len(" old=") :])
    return datetime.datetime.fromisoformat(time_text), tokens, {"new": new, "old": old}


def test_a_caput_is_logged_with_host_user_pv_old_and_new(server: CamiocServer) -> None:
    pv = f"{server.prefix}{SIM}:cam1:ReverseX"
    ctx = Context(client_name="alice")
    try:
        (chan,) = ctx.get_pvs(pv, timeout=10)
        chan.wait_for_connection(timeout=10)
        chan.write(1, wait=True, timeout=10)
        line = wait_until(lambda: line_for(server, f" ca {pv} "), what="the caput in the put log")
        moment, tokens, values = fields(line)
        assert tokens == ["127.0.0.1", "alice", "ca", pv]
        assert values == {"new": "Yes", "old": "No"}
        assert abs((datetime.datetime.now().astimezone() - moment).total_seconds()) < 60
        # a refused put (out of the PV's limits) is no put
        (binning,) = ctx.get_pvs(f"{server.prefix}{SIM}:cam1:BinX", timeout=10)
        binning.wait_for_connection(timeout=10)
        with pytest.raises(Exception):  # noqa: B017 - caproto raises ErrorResponseReceived or a limit error
            binning.write(10_000, wait=True, timeout=10)
    finally:
        ctx.disconnect()
    assert line_for(server, f"{SIM}:cam1:BinX ") is None
    assert f'put 127.0.0.1 alice ca {pv} new="Yes" old="No"' in server.log()  # and the service log


def test_a_half_line_from_a_crash_stays_apart(server: CamiocServer) -> None:
    wait_until(lambda: len(put_lines(server)) > 1 or None, what="a put line")
    lines = put_lines(server)
    assert lines[0] == HALF_LINE
    assert lines[1][:4].isdigit() and not lines[1].startswith(HALF_LINE), lines


def test_a_pva_put_is_logged(server: CamiocServer) -> None:
    pv = f"{server.prefix}{SIM}:cam1:BinY"
    with PvaContext("pva", conf=server.pva_conf(), useenv=False) as pva:
        wait_until(lambda: pva.get(pv, timeout=5) is not None, what="BinY over PVA")
        pva.put(pv, 2, timeout=10)
        with pytest.raises(RemoteError):
            pva.put(f"{server.prefix}{SIM}:cam1:BinX", 10_000, timeout=10)
    line = wait_until(lambda: line_for(server, f" pva {pv} "), what="the PVA put in the put log")
    _, tokens, values = fields(line)
    assert tokens[0] == "127.0.0.1" and tokens[2:] == ["pva", pv]
    assert tokens[1] != "-"  # p4p sends the client's account
    assert values == {"new": 2, "old": 1}
    assert line_for(server, f"{SIM}:cam1:BinX ") is None


def test_a_rest_config_write_is_logged_with_the_changed_keys(server: CamiocServer) -> None:
    url = f"{server.camera_url}/api/v1/cam/{SIM}/config"
    config = requests.get(url, timeout=10).json()["config"]
    assert config["frame_rate"] != 12.5
    answer = requests.post(url, json={**config, "frame_rate": 12.5}, timeout=10).json()
    assert answer["state"] == "ok", answer
    refused = requests.post(url, json={**config, "frame_rate": -1}, timeout=10).json()
    assert refused["state"] == "error"
    route = f"POST /api/v1/cam/{SIM}/config"
    lines = wait_until(
        lambda: [line for line in put_lines(server) if f" rest {route} " in line] or None,
        what="the REST write in the put log",
    )
    assert len(lines) == 1, lines  # the refused write is not there
    _, tokens, values = fields(lines[0])
    assert tokens == ["127.0.0.1", "-", "rest", "POST", f"/api/v1/cam/{SIM}/config"]
    assert values == {"new": {"frame_rate": 12.5}, "old": {"frame_rate": config["frame_rate"]}}
    # a write with nothing to compare names the route only
    assert requests.delete(f"{server.camera_url}/api/v1/cam/{SIM}", timeout=10).json()["state"] == "ok"
    stop = wait_until(lambda: line_for(server, f" rest DELETE /api/v1/cam/{SIM}"), what="the stop in the put log")
    assert stop.endswith(f"127.0.0.1 - rest DELETE /api/v1/cam/{SIM}")


def test_the_file_is_one_line_per_write(tmp_path: Path) -> None:
    """Values with newlines and long values stay on their line (a unit check of the format)."""
    from camioc.putlog import MAX_VALUE_CHARS, format_line

    line = format_line("rest", "10.0.0.2", None, "POST /x\n/y", old={"a": "two\nlines"}, new="x" * 10_000)
    assert "\n" not in line
    _, tokens, values = fields("2026-01-01T00:00:00+00:00 " + line)
    assert tokens == ["10.0.0.2", "-", "rest", "POST", "/x", "/y"]
    assert values["old"] == {"a": "two\nlines"}
    assert isinstance(values["new"], str) and len(values["new"]) == MAX_VALUE_CHARS
