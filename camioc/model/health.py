"""iocStats-like health PVs: the service's control process and each instance's worker.

The service block ``$(P)`` carries iocStats' names (``IOC_CPU_LOAD``, ``MEM_USED``/``MEM_FREE``/
``MEM_MAX``, ``CPU_CNT`` beside ``HEARTBEAT``/``UPTIME``/``START_CNT``), measured by
:func:`control_health` once per heartbeat. Every camera driver (``$(P)<cam>:cam1:``) and pipeline
(``$(P)<id>:``) carries :data:`WORKER_HEALTH_PVS` for its worker process, from the managers'
:class:`~camioc.core.api.WorkerHealth` (one measurement per second, shared with the REST
instance statistics); they are INVALID (UDF) while no worker runs.

CPU figures differ on purpose: ``IOC_CPU_LOAD`` is iocStats' (percent of the whole machine, all
cores), a worker's ``WorkerCpu_RBV`` is cam_server's statistics ``cpu`` (percent of one core: a
worker busy on one core shows 100).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from camioc.core.api import WorkerHealth
from camioc.model.records import NO_ALARM, NO_DATA, PVDef

if TYPE_CHECKING:
    from camioc.model.device import Device

#: Memory and CPU figures move a little every second; these deadbands keep monitors quiet.
CPU_MDEL = 0.5
MEMORY_MDEL = 65536.0

#: The service's health rows after ``HEARTBEAT``/``UPTIME``/``START_CNT`` (iocStats names).
SERVICE_HEALTH_PVS: tuple[PVDef, ...] = (
    PVDef("ioc_cpu_load", "IOC_CPU_LOAD", "ai", "Control process CPU, % of all cores", egu="%", prec=1,
          mdel=CPU_MDEL),
    PVDef("cpu_count", "CPU_CNT", "longin", "Number of CPU cores"),
    PVDef("mem_used", "MEM_USED", "ai", "Control process resident memory", egu="byte", prec=0, mdel=MEMORY_MDEL),
    PVDef("mem_free", "MEM_FREE", "ai", "Host memory available", egu="byte", prec=0, mdel=MEMORY_MDEL),
    PVDef("mem_max", "MEM_MAX", "ai", "Host memory total", egu="byte", prec=0),
)

#: A camera's or pipeline's worker process (the same rows in both blocks).
WORKER_HEALTH_PVS: tuple[PVDef, ...] = (
    PVDef("worker_cpu", "WorkerCpu_RBV", "ai", "Worker CPU, % of one core", egu="%", prec=1, mdel=CPU_MDEL),
    PVDef("worker_memory", "WorkerMemory_RBV", "ai", "Worker resident memory (RSS)", egu="byte", prec=0,
          mdel=MEMORY_MDEL),
    PVDef("worker_uptime", "WorkerUptime_RBV", "ai", "Time since the worker started", egu="s", prec=0,
          mdel=0.5),
    PVDef("worker_pid", "WorkerPid_RBV", "longin", "Worker process id (0: none)"),
)
WORKER_HEALTH_ATTRS: tuple[str, ...] = tuple(pv.attr for pv in WORKER_HEALTH_PVS)


def worker_values(health: WorkerHealth | None) -> tuple[dict[str, Any], Any]:
    """The worker rows' values and alarm: the measurement, or zeros and INVALID (no worker)."""
    if health is None:
        return dict.fromkeys(WORKER_HEALTH_ATTRS[:3], 0.0) | {"worker_pid": 0}, NO_DATA
    return {"worker_cpu": round(health.cpu, 1), "worker_memory": float(health.memory),
            "worker_uptime": float(int(health.uptime)), "worker_pid": int(health.pid)}, NO_ALARM


async def apply_worker_health(device: Device, health: WorkerHealth | None) -> None:
    """Post a worker's health (None: no worker runs) to a camera's or pipeline's device."""
    values, alarm = worker_values(health)
    for attr, value in values.items():
        await device.post(attr, value, alarm=alarm)


class ControlMeter:
    """The control process's iocStats figures; CPU percent is since the previous :meth:`measure`
    (called once per heartbeat, so it is the load of the last second)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)
        self.cpu_count = psutil.cpu_count() or 1

    def measure(self) -> dict[str, Any]:
        import psutil

        memory = psutil.virtual_memory()
        return {
            "ioc_cpu_load": round(self._process.cpu_percent(None) / self.cpu_count, 1),
            "cpu_count": int(self.cpu_count),
            "mem_used": float(self._process.memory_info().rss),
            "mem_free": float(memory.available),
            "mem_max": float(memory.total),
        }


__all__ = ["SERVICE_HEALTH_PVS", "WORKER_HEALTH_ATTRS", "WORKER_HEALTH_PVS", "ControlMeter", "apply_worker_health",
           "worker_values"]
