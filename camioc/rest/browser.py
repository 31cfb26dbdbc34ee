"""What a web browser may do with camioc's REST servers: CORS allow-list, cross-origin writes, Host.

cam_server answers every request with ``Access-Control-Allow-Origin: *`` and executes any request a
web page sends, so any page open in a browser that can reach the port may change configurations,
start instances and upload code. camioc's default (a :class:`BrowserPolicy` with no option set):

* **CORS only for allowed origins.** A request carrying an ``Origin`` on the allow-list
  (``--cors-origin``) gets ``Access-Control-Allow-Origin: <that origin>`` and cam_server's
  method/header lists; a foreign origin gets no CORS header, so its page cannot read the answer.
  ``--cors-origin '*'`` restores cam_server's behaviour exactly (every response, any origin).
  Requests without ``Origin`` — curl, Python clients, ``cam_server_client`` — are no CORS requests
  (a browser always sends ``Origin`` on a cross-origin request); they keep cam_server's headers.
  Every answer says ``Vary: Origin``, so no cache hands one origin's answer to another.
* **Cross-origin writes refused.** A request other than ``GET``/``HEAD``/``OPTIONS`` whose ``Origin``
  is neither the server's own (same host and port as its ``Host``) nor on the allow-list is refused
  with HTTP 403 before its handler runs — also a ``Content-Type: text/plain`` "simple" POST that a
  browser sends without preflight. A preflight (``OPTIONS``) from a foreign origin gets 403 too.
* **Cross-site GETs that start an instance refused.** cam_server starts a camera (or a saved
  pipeline's shared instance) on a plain ``GET``, so an ``<img src=...>`` on any web page would
  start one. Such a ``GET`` (only when it would start an instance) is refused when the browser
  marks it as coming from another site (``Sec-Fetch-Site: cross-site`` or ``same-site``) or it
  carries a foreign ``Origin`` — unless its ``Origin`` (or, for a tag, which sends none, the
  origin of its ``Referer``) is allowed with ``--cors-origin``. Addresses typed in the browser
  (``Sec-Fetch-Site: none``), the server's own pages and clients that send none of these
  headers (curl, Python) are not affected.
* **Host checked on a loopback bind.** A server on 127.0.0.1/::1/localhost answers only requests
  whose ``Host`` names it: ``localhost``, ``127.0.0.1``, ``[::1]``, the bind address, ``--hostname``
  and every ``--allowed-host`` (any port, unless the option names one). This is what stops DNS
  rebinding (a foreign page whose name is re-pointed at 127.0.0.1). On another interface there is
  no Host check unless ``--allowed-host`` is given (the names it is reached by are not known);
  ``--allowed-host '*'`` switches the check off.

Refusals are HTTP 403 with cam_server's error envelope ``{"state": "error", "status": <why>}``; the
message names the origin or host and the option that would allow it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: cam_server's CORS headers (compat §4): every response, with ``--cors-origin '*'``.
CORS_HEADERS: Mapping[str, str] = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "PUT, GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Origin, Accept, Content-Type, X-Requested-With, X-CSRF-Token",
}

#: Methods a browser page may send from any origin (they change nothing).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ANY = "*"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WILDCARD_BINDS = ("", "0.0.0.0", "::", "*")


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` in canonical form (lower case, no default port, no slash).

    Raises ``ValueError`` with a message for anything that is no origin (a path, a query, user
    info, no host). ``*`` is returned as is.
    """
    text = text.strip()
    if text == ANY:
        return ANY
    if text.lower() == "null":
        raise ValueError("'null' is the origin of sandboxed and file:// pages, which anyone can make; "
                         "allowing it would allow them all (use '*' if that is what you mean)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an origin: {exc}") from None
    if not parts.scheme or not parts.hostname or "://" not in text:
        raise ValueError(f"{text!r} is not an origin: use scheme://host[:port], e.g. http://example.org:8080")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{text!r} is not an origin: an origin is scheme://host[:port], "
                         "with no path, query or user")
    scheme, host = parts.scheme.lower(), parts.hostname.lower().rstrip(".")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def split_host(text: str) -> tuple[str, int | None]:
    """``(name, port)`` of a ``Host`` header value (or an ``--allowed-host``); name in lower case.

    IPv6 literals come without brackets. Raises ``ValueError`` if it cannot be a host.
    """
    text = text.strip()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not a host")
        port_text = rest[1:]
    elif text.count(":") == 1:
        name, _, port_text = text.partition(":")
    elif ":" in text:  # a bare IPv6 address
        name, port_text = text, ""
    else:
        name, port_text = text, ""
    name = name.lower().rstrip(".")
    if not name or any(ch.isspace() or ch in "/\\@?#" for ch in name):
        raise ValueError(f"{text!r} is not a host")
    if port_text == "":
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not a host: bad port")
    return name, int(port_text)


def is_loopback(interface: str) -> bool:
    """True for a bind address that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = interface.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _origin_of(url: str | None) -> str | None:
    """The origin (``scheme://host[:port]``) of a URL such as a ``Referer``, or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        if not parts.scheme or not parts.hostname:
            return None
        return normalize_origin(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}")
    except ValueError:
        return None


def _host_text(name: str) -> str:
    return f"[{name}]" if ":" in name else name


@dataclass(frozen=True)
class BrowserPolicy:
    """The browser rules of one REST server (see the module docstring).

    ``cors_origins``: ``--cors-origin`` values (normalised here; ``*`` = any origin, cam_server's
    behaviour). ``allowed_hosts``: ``--allowed-host`` values (``NAME`` or ``NAME:PORT``; ``*`` = no
    Host check). ``interface``: the REST bind address. ``hostname``: ``--hostname``, if given.
    """

    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    interface: str = "127.0.0.1"
    hostname: str | None = None
    _origins: frozenset[str] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[tuple[str, int | None]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origins = frozenset(normalize_origin(origin) for origin in self.cors_origins)
        object.__setattr__(self, "cors_origins", tuple(sorted(origins)))
        hosts: set[tuple[str, int | None]] = {(name, None) for name in LOOPBACK_NAMES}
        extra = [self.interface] if self.interface.strip() not in _WILDCARD_BINDS else []
        if self.hostname:
            extra.append(self.hostname)
        if not self.any_host and not is_loopback(self.interface):
            extra.append(socket.gethostname())  # the Host check is on: this machine's name too
        for name in extra:
            try:
                hosts.add((split_host(name)[0], None))
            except ValueError:
                continue  # an odd machine name: not a name a browser could send anyway
        for item in self.allowed_hosts:
            if item.strip() != ANY:
                hosts.add(split_host(item))
        object.__setattr__(self, "_origins", origins)
        object.__setattr__(self, "_hosts", frozenset(hosts))

    # ---------------------------------------------------------------------------------- the options
    @property
    def any_origin(self) -> bool:
        """``--cors-origin '*'``: cam_server's CORS, every origin may read and write."""
        return ANY in self._origins

    @property
    def any_host(self) -> bool:
        return any(item.strip() == ANY for item in self.allowed_hosts)

    @property
    def checks_host(self) -> bool:
        """Host checked: on a loopback bind, or when ``--allowed-host`` names hosts."""
        if self.any_host:
            return False
        return is_loopback(self.interface) or bool(self.allowed_hosts)

    def host_names(self) -> list[str]:
        """The names a Host may carry (for messages and the start-up log)."""
        return sorted(_host_text(name) + (f":{port}" if port else "") for name, port in self._hosts)

    def describe(self) -> str:
        """One line for the start-up log."""
        if self.any_origin:
            cors = "CORS open to every origin (--cors-origin '*'): any web page may send writes"
        elif self.cors_origins:
            cors = "CORS for " + ", ".join(self.cors_origins) + "; other origins may not write"
        else:
            cors = "no CORS (only same-origin pages and non-browser clients may write)"
        host = ("Host must be one of " + ", ".join(self.host_names())) if self.checks_host else "Host not checked"
        return f"{cors}; {host}"

    # ----------------------------------------------------------------------------------- the checks
    def host_refusal(self, host: str | None) -> str | None:
        """Why a request with this ``Host`` header is refused, or None if it is served."""
        if not self.checks_host or host is None:
            return None  # HTTP/1.0 without Host: no browser (browsers always send it)
        try:
            name, port = split_host(host)
        except ValueError:
            name, port = "", None
        if name and ((name, None) in self._hosts or (name, port) in self._hosts):
            return None
        where = "loopback" if is_loopback(self.interface) else self.interface
        return (f"Request refused: Host {host!r} is not a name this server answers to "
                f"({', '.join(self.host_names())}; it listens on {where}). A foreign name pointed at this "
                f"address is how a web page reaches it (DNS rebinding). If clients really use this name, "
                f"start camioc with --allowed-host {name or host}.")

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """True if a page from ``origin`` may use this server (allow-list or its own origin)."""
        if self.any_origin:
            return True
        try:
            canonical = normalize_origin(origin)
        except ValueError:
            return False  # "null", garbage: never allowed but by '*'
        return canonical in self._origins or self._is_own_origin(canonical, host)

    @staticmethod
    def _is_own_origin(canonical: str, host: str | None) -> bool:
        """Same host and port as the request's ``Host``: a page this server served itself."""
        if not host:
            return False
        try:
            host_name, host_port = split_host(host)
        except ValueError:
            return False
        parts = urlsplit(canonical)
        default = _DEFAULT_PORTS.get(parts.scheme)
        origin_port = parts.port if parts.port is not None else default
        name = (parts.hostname or "").lower()
        return name == host_name and (host_port == origin_port or (host_port is None and origin_port == default))

    def origin_refusal(self, method: str, origin: str | None, host: str | None) -> str | None:
        """Why a request is refused for its ``Origin``, or None: only writes and preflights."""
        if origin is None or self.any_origin or (method in SAFE_METHODS and method != "OPTIONS"):
            return None
        if self.origin_allowed(origin, host):
            return None
        what = "a preflight (OPTIONS) request" if method == "OPTIONS" else f"{method} requests"
        shown = origin if len(origin) <= 200 else origin[:200] + "..."
        hint = f"--cors-origin {shown}"
        try:
            normalize_origin(origin)
        except ValueError:
            hint = "--cors-origin '*' (this origin cannot be listed)"
        return (f"Cross-origin request refused: a web page from origin {shown!r} may not send {what} to this "
                f"server (only its own pages and origins allowed with --cors-origin may). To allow "
                f"that origin, start camioc with {hint}.")

    def start_refusal(self, origin: str | None, host: str | None, fetch_site: str | None,
                      referer: str | None = None) -> str | None:
        """Why a ``GET`` that would start an instance is refused for where it comes from, or None.

        ``fetch_site``: the ``Sec-Fetch-Site`` header (browsers send it on every request)."""
        if self.any_origin:
            return None
        site = (fetch_site or "").strip().lower()
        if origin is not None:
            if self.origin_allowed(origin, host):
                return None
            source = f"origin {origin[:200]!r}"
        elif site in ("cross-site", "same-site"):
            page = _origin_of(referer)
            if page is not None and self.origin_allowed(page, host):
                return None
            source = f"page {page!r}" if page is not None else "another site (Sec-Fetch-Site: " + site + ")"
        else:
            return None  # the server's own page, an address typed in, or no browser at all
        return (f"Cross-site request refused: a web page from {source} may not start an instance with a GET "
                f"(cam_server starts cameras and pipelines on GET, so any page could, e.g. with an <img>). "
                f"Open the address directly, or allow that page's origin with --cors-origin.")

    def cors_headers(self, origin: str | None, host: str | None) -> dict[str, str]:
        """The CORS headers of a response to a request with this ``Origin`` (None: none sent)."""
        if self.any_origin:
            return dict(CORS_HEADERS)
        if origin is None:
            # No browser's cross-origin request (they always send Origin): cam_server's headers,
            # which only a browser would act upon; Vary keeps caches from reusing them.
            return {**CORS_HEADERS, "Vary": "Origin"}
        if self.origin_allowed(origin, host):
            return {**CORS_HEADERS, "Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {"Vary": "Origin"}


__all__ = [
    "CORS_HEADERS",
    "SAFE_METHODS",
    "BrowserPolicy",
    "is_loopback",
    "normalize_origin",
    "split_host",
]
