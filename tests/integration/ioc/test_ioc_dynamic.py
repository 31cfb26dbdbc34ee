"""Cameras appear and go at runtime: clients of a removed camera see a disconnect, nothing else does."""

from __future__ import annotations

import asyncio
import json
import threading

from ioc_support import wait_for

from camioc.model.blocks import CAMERA_PVS, IMAGE_PVS


class Recorder:
    """pyepics value + connection callbacks, recorded (libca calls them from its own thread)."""

    def __init__(self) -> None:
        self.values: list = []
        self.connections: list[bool] = []
        self.lock = threading.Lock()

    def on_value(self, value=None, **_) -> None:
        with self.lock:
            self.values.append(value)

    def on_connection(self, conn=None, **_) -> None:
        with self.lock:
            self.connections.append(bool(conn))


async def _monitor(epics_ca, name: str, recorder: Recorder):
    pv = await asyncio.to_thread(epics_ca.PV, name, callback=recorder.on_value,
                                 connection_callback=recorder.on_connection, auto_monitor=True)
    assert await asyncio.to_thread(pv.wait_for_connection, 5), f"{name} did not connect"
    return pv


async def test_removed_camera_disconnects_its_clients_only(ioc, ca, service, pv_prefix, epics_ca):
    removed = Recorder()
    other = Recorder()
    heartbeat = Recorder()
    pvs = [
        await _monitor(epics_ca, f"{pv_prefix}cam_a:cam1:ArrayCounter_RBV", removed),
        await _monitor(epics_ca, f"{pv_prefix}cam_b:cam1:ArrayCounter_RBV", other),
        await _monitor(epics_ca, f"{pv_prefix}HEARTBEAT", heartbeat),
    ]
    # A field channel and a long-string channel of the camera too (cached REC.FIELD names go as well).
    desc = await asyncio.to_thread(epics_ca.PV, f"{pv_prefix}cam_a:cam1:BinX.DESC")
    assert await asyncio.to_thread(desc.wait_for_connection, 5)
    try:
        await wait_for(lambda: removed.values and other.values, message="initial monitor updates")

        await service.delete_config("cam_a")
        await wait_for(lambda: removed.connections[-1:] == [False], message="no disconnect seen by the client")
        await wait_for(lambda: not desc.connected, message="field channel not disconnected")
        assert other.connections == [True], "the other camera's channel was disturbed"
        assert not any(name.startswith(f"{pv_prefix}cam_a:") for name in ioc.pv_names())

        # The same client circuit keeps working: reads, and monitors keep flowing.
        count = len(heartbeat.values)
        value = await asyncio.to_thread(epics_ca.caget, f"{pv_prefix}START_CNT", timeout=5)
        assert value == 7
        await wait_for(lambda: len(heartbeat.values) > count, timeout=3, message="heartbeat monitor stopped")
        service.emit_status("cam_b", frame_count=5)
        await wait_for(lambda: other.values[-1] == 5, message="other camera's monitor stopped")
        assert json.loads(await ca.get_text(f"{pv_prefix}Cameras_RBV")) == ["cam_b"]
        result = await ca.caget(f"{pv_prefix}cam_a:cam1:ArrayCounter_RBV", timeout=0.5)
        assert "not found" in result.output, result.output
    finally:
        for pv in (*pvs, desc):
            await asyncio.to_thread(pv.disconnect)


async def test_camera_added_at_runtime_and_re_added(ioc, ca, service, pv_prefix):
    await service.set_config("cam_c", {"size_x": 100, "size_y": 80})
    await wait_for(lambda: f"{pv_prefix}cam_c:cam1:Acquire" in ioc.pv_names(), message="cam_c PVs")
    assert len([n for n in ioc.pv_names() if ":cam_c:" in n]) == len(CAMERA_PVS) + len(IMAGE_PVS)
    assert await ca.get(f"{pv_prefix}cam_c:cam1:BinX.RTYP") == "longout"
    await wait_for(lambda: _cameras_are(ca, pv_prefix, ["cam_a", "cam_b", "cam_c"]), message="Cameras_RBV")

    await service.delete_config("cam_c")
    await wait_for(lambda: not any(":cam_c:" in n for n in ioc.pv_names()), message="cam_c removed")
    await service.set_config("cam_c", {"size_x": 50, "size_y": 40})
    await wait_for(lambda: f"{pv_prefix}cam_c:cam1:Acquire" in ioc.pv_names(), message="cam_c re-added")
    await service.get_stream("cam_c")
    await wait_for(lambda: _equals(ca, f"{pv_prefix}cam_c:cam1:ArraySize0_RBV", "50"), message="re-added camera")
    assert await ca.get(f"{pv_prefix}cam_c:cam1:Acquire_RBV") == "Acquiring"


async def test_add_then_remove_in_quick_succession(ioc, service, pv_prefix):
    for _ in range(3):
        await service.set_config("cam_q", {})
        await service.delete_config("cam_q")
    await service.set_config("cam_q", {})
    await wait_for(lambda: f"{pv_prefix}cam_q:cam1:Acquire" in ioc.pv_names(), message="cam_q present")
    await service.delete_config("cam_q")
    await wait_for(lambda: not any(":cam_q:" in n for n in ioc.pv_names()), message="cam_q gone")
    assert set(ioc._pvdb) >= set(ioc.pv_names())


async def test_stop_is_idempotent_and_leaves_no_tasks(service, pv_prefix, ca_repeater, beacon_sink):
    from camioc.ioc.server import CamiocIoc

    before = {task for task in asyncio.all_tasks() if not task.done()}
    ioc = CamiocIoc(pv_prefix, service, version="1", start_count=1)
    await ioc.start()
    assert service.listeners == [ioc]
    await ioc.stop()
    await ioc.stop()
    assert service.listeners == []
    await asyncio.sleep(0)
    left = {task for task in asyncio.all_tasks() if not task.done()} - before - {asyncio.current_task()}
    assert left == set(), left


async def _equals(ca, pv, expected) -> bool:
    return await ca.try_get(pv) == expected


async def _cameras_are(ca, prefix, expected) -> bool:
    text = await ca.try_get(f"{prefix}Cameras_RBV", "-S")
    return text is not None and json.loads(text) == expected


async def test_registry_runs_and_stops_the_hooks_of_groups_added_at_runtime(ca, pv_prefix, ca_repeater, beacon_sink):
    """caproto starts scan/startup hooks only for PVs present at run(); the registry does the rest."""
    from caproto.server import PVGroup, pvproperty

    from camioc.ioc.registry import CamiocContext, PVRegistry

    class Ticker(PVGroup):
        shut_down = False
        count = pvproperty(value=0, name="Count", record="longin", read_only=True, alarm_group="count")

        @count.scan(period=0.02)
        async def count(self, instance, async_lib):
            await instance.write(instance.value + 1, verify_value=False)

        @count.shutdown
        async def count(self, instance, async_lib):
            type(self).shut_down = True

    pvdb: dict = {}
    context = CamiocContext(pvdb)
    serving = asyncio.Event()

    async def hook(async_lib):
        serving.set()

    server = asyncio.create_task(context.run(startup_hook=hook))
    try:
        await asyncio.wait_for(serving.wait(), 5)
        registry = PVRegistry(pvdb)
        registry.attach(context)
        group = Ticker(f"{pv_prefix}tick:")
        registry.add("tick", group)
        await wait_for(lambda: group.count.value >= 3, message="the scan hook does not run")
        assert int(await ca.get(f"{pv_prefix}tick:Count")) >= 3
        await registry.remove("tick")
        value = group.count.value
        await asyncio.sleep(0.1)
        assert group.count.value == value, "the scan hook still runs after removal"
        assert Ticker.shut_down
        assert pvdb == {}
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
