"""Serving a REST app on the running event loop (no ``web.run_app``: camioc owns the loop)."""

from __future__ import annotations

import logging

from aiohttp import web

log = logging.getLogger(__name__)

#: How long ``stop()`` lets in-flight requests finish before closing their connections.
SHUTDOWN_TIMEOUT = 5.0


class RestSite:
    """One aiohttp application on ``host:port``; ``await start()``, ``await stop()``.

    ``port=0`` binds a free port; :attr:`port` and :attr:`url` give the real one after start.
    Access logging is off by default (status pages and clients poll; the log rings would fill
    with requests); pass ``access_log=True`` to log every request to ``camioc.rest.access``.
    """

    def __init__(self, app: web.Application, host: str, port: int, *, access_log: bool = False) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._access_log = access_log

    @property
    def port(self) -> int:
        return self._port if self._port is not None else self._requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError(f"REST site {self.url} already started")
        runner = web.AppRunner(
            self.app,
            access_log=logging.getLogger("camioc.rest.access") if self._access_log else None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        self._port = int(addresses[0][1]) if addresses else self._requested_port
        log.info("REST API listening on %s", self.url)

    async def stop(self) -> None:
        """Stop accepting connections, let running requests finish (bounded), close. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("REST API on %s stopped", self.url)


__all__ = ["RestSite"]
