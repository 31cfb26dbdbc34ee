"""The cam_server-compatible REST layer (aiohttp): camera API (:8888) and pipeline API (:8889).

Modules: ``envelope`` (the cam_server envelope, errors as HTTP 200, CORS — one middleware),
``browser`` (what web pages may do: CORS allow-list, cross-origin writes, Host check),
``routing`` (Bottle's route precedence), ``common`` (routes both servers share), ``scripts``
(user script uploads), ``images`` (PNG/colormaps, ``image_bytes``), ``unpickle`` (safe loading of
pickled arrays), ``camera_api`` (``create_camera_app``), ``pipeline_api``
(``create_pipeline_app``), ``server`` (``RestSite``).
"""
