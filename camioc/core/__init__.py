"""The domain: config store use, camera and pipeline instance managers, workers, backgrounds.

Adapters (``camioc.ioc``, ``camioc.rest``) use it through the service protocols of
:mod:`camioc.core.api`; it imports neither caproto nor aiohttp (an import-linter contract).
"""
