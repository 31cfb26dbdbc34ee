"""Who may write: one access policy for Channel Access and REST (``camioc --access-policy FILE``).

cam_server lets every client that reaches its ports change everything. camioc keeps that as the
default (:meth:`AccessPolicy.open`: everyone may write), and with a policy file decides per client
whether it may only **read** or also **write** (caput, REST ``POST``/``PUT``/``DELETE``, a ``GET``
that starts an instance). Both transports ask the same :class:`AccessPolicy`; it knows no transport.

The file (YAML, or JSON, which is YAML too)::

    # camioc access policy
    default: read                 # clients no rule matches: read (or write)
    rules:                        # checked in order, the FIRST matching rule decides
      - name: control room        # optional, shown in refusals and the log
        hosts: [10.1.2.0/24, opi01.example.org, 127.0.0.1]
        access: write
      - hosts: 10.0.0.0/8
        users: [operator, expert] # Channel Access only: the client's user name
        access: write

* ``hosts``: IP addresses, CIDR networks (``10.1.2.0/24``, ``fd00::/8``) or host names, one or a
  list. Names are resolved to their addresses **once, when the policy is loaded** (every address
  of the name; a name that does not resolve is an error: a typo must not silently grant or deny).
  The client is identified by the address its connection comes from — never by a name it claims
  (CA clients send a host name of their choosing; camioc ignores it, as EPICS does with
  ``asCheckClientIP``). IPv4 clients on an IPv6 socket (``::ffff:10.1.2.3``) match IPv4 rules.
* ``users``: Channel Access user names (what the client reports, ``$USER`` for EPICS tools: it
  is not authenticated, as in EPICS access security — use it with ``hosts``). A rule with
  ``users`` never matches a REST request (HTTP carries no user).
* A rule matches when **all** its conditions do (host in ``hosts`` and user in ``users``); it
  must have at least one condition (``default`` is the rule for everyone).
* ``access``: ``read`` or ``write`` (``write`` includes reading; nobody is denied reading).

First match wins (as in a firewall's rule list), so put narrow exceptions above broad rules. A
policy that cannot be read or has any mistake raises :class:`~camioc.errors.ConfigError` naming the
file, the rule and the problem; camioc then does not start.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from camioc.errors import ConfigError

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(name) -> addresses``: how host names of a policy become addresses (a parameter for tests).
Resolver: TypeAlias = Callable[[str], list[str]]

_TOP_KEYS = ("default", "rules")
_RULE_KEYS = ("name", "hosts", "users", "access")


class Access(enum.Enum):
    """What a client may do. ``WRITE`` includes reading."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Rule:
    """One rule of a policy: clients it matches get ``access``."""

    access: Access
    #: networks of the ``hosts`` entries (a name: one host network per address); None: any host
    networks: tuple[Network, ...] | None = None
    #: user names; None: any user
    users: frozenset[str] | None = None
    #: what the rule is called in messages: its ``name``, else ``rule <n>``
    label: str = "rule"
    #: the ``hosts`` entries as written (for messages)
    hosts_text: tuple[str, ...] = ()

    def matches(self, address: Address | None, user: str | None) -> bool:
        if self.networks is not None and (address is None or not any(address in net for net in self.networks)):
            return False
        return self.users is None or (user is not None and user in self.users)

    def describe(self) -> str:
        parts = []
        if self.hosts_text:
            parts.append("hosts " + ", ".join(self.hosts_text))
        if self.users is not None:
            parts.append("users " + ", ".join(sorted(self.users)))
        return f"{self.label} ({'; '.join(parts)}): {self.access.value}"


@dataclass(frozen=True)
class Decision:
    """What a client may do and why (the rule that decided, or None: the default)."""

    access: Access
    rule: Rule | None

    @property
    def may_write(self) -> bool:
        return self.access is Access.WRITE

    @property
    def reason(self) -> str:
        return self.rule.label if self.rule is not None else "the default"


def client_address(host: str | None) -> Address | None:
    """The address of a client as a transport reports it (``"10.1.2.3"``, ``"::ffff:10.1.2.3"``,
    ``"fe80::1%eth0"``); IPv4-mapped IPv6 addresses become IPv4; None for anything else."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class AccessPolicy:
    """The rules (first match wins) and the default; :meth:`decide` answers for one client."""

    rules: tuple[Rule, ...] = ()
    default: Access = Access.WRITE
    #: the file it was loaded from (None: no policy given, everyone may write)
    source: Path | None = None

    @classmethod
    def open(cls) -> AccessPolicy:
        """No policy: everyone may write, as with cam_server."""
        return cls()

    @property
    def is_open(self) -> bool:
        """True when no policy file was given (everyone may write)."""
        return self.source is None and not self.rules and self.default is Access.WRITE

    def decide(self, host: str | None, user: str | None = None) -> Decision:
        """What the client at ``host`` (its connection's address) with ``user`` may do."""
        address = client_address(host)
        for rule in self.rules:
            if rule.matches(address, user):
                return Decision(rule.access, rule)
        return Decision(self.default, None)

    def may_write(self, host: str | None, user: str | None = None) -> bool:
        return self.decide(host, user).may_write

    def write_refusal(self, what: str, host: str | None, user: str | None = None) -> str | None:
        """Why ``what`` (e.g. ``"POST /api/v1/pipeline"``) is refused to this client, or None."""
        decision = self.decide(host, user)
        if decision.may_write:
            return None
        who = f"host {host}" if host else "this client"
        if user is not None:
            who += f", user {user!r}"
        where = f" ({self.source})" if self.source is not None else ""
        return (f"Access denied: {what} changes the server, and the access policy{where} lets {who} only "
                f"read ({decision.reason}).")

    def describe(self) -> str:
        """One line for the start-up log."""
        if self.is_open:
            return "no access policy: every client may write"
        rules = "; ".join(rule.describe() for rule in self.rules) or "no rules"
        return f"access policy {self.source}: {rules}; default {self.default.value}"


# ============================================================================ loading
def _resolve(name: str) -> list[str]:
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _networks(entry: str, resolver: Resolver) -> list[Network]:
    """The networks of one ``hosts`` entry: an address, a CIDR network, or a host name."""
    text = entry.strip()
    try:
        return [ipaddress.ip_network(text, strict=True)]
    except ValueError as exc:
        if "/" in text:
            raise ConfigError(f"{text!r} is not a network: {exc} (e.g. 10.1.2.0/24)") from None
    try:
        addresses = resolver(text)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"host name {text!r} does not resolve ({exc}); give its address or fix the name") from None
    networks: list[Network] = []
    for address in addresses:
        parsed = client_address(address)
        if parsed is not None:
            networks.append(ipaddress.ip_network(parsed))
    if not networks:
        raise ConfigError(f"host name {text!r} resolves to no IP address")
    return networks


def _text_list(value: Any, key: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(f"'{key}' must be a name or a non-empty list of names, got {value!r}")
    texts = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)) or not str(item).strip():
            raise ConfigError(f"'{key}' entries must be non-empty names, got {item!r}")
        texts.append(str(item).strip())
    return texts


def _access(value: Any, where: str) -> Access:
    try:
        return Access(str(value).strip().lower()) if isinstance(value, str) else Access(value)
    except ValueError:
        raise ConfigError(f"{where} must be 'read' or 'write', got {value!r}") from None


def _rule(index: int, item: Any, resolver: Resolver) -> Rule:
    where = f"rule {index}"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'hosts' and/or 'users' and 'access', got {item!r}")
    unknown = [str(key) for key in item if key not in _RULE_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                          f"(a rule has {', '.join(_RULE_KEYS)})")
    label = where
    if "name" in item:
        if not isinstance(item["name"], str) or not item["name"].strip():
            raise ConfigError(f"{where}: 'name' must be a non-empty text")
        label = f"rule {index} {item['name'].strip()!r}"
    if "access" not in item:
        raise ConfigError(f"{label}: 'access' is missing (read or write)")
    access = _access(item["access"], f"{label}: 'access'")
    if "hosts" not in item and "users" not in item:
        raise ConfigError(f"{label}: give 'hosts' and/or 'users' (use 'default' for every client)")
    networks: tuple[Network, ...] | None = None
    hosts_text: tuple[str, ...] = ()
    if "hosts" in item:
        hosts_text = tuple(_text_list(item["hosts"], "hosts"))
        found: list[Network] = []
        for entry in hosts_text:
            try:
                found.extend(_networks(entry, resolver))
            except ConfigError as exc:
                raise ConfigError(f"{label}: hosts: {exc}") from None
        networks = tuple(found)
    users = frozenset(_text_list(item["users"], "users")) if "users" in item else None
    return Rule(access, networks, users, label, hosts_text)


def parse_policy(data: Any, *, source: Path | None = None, resolver: Resolver = _resolve) -> AccessPolicy:
    """An :class:`AccessPolicy` from the parsed file (a mapping with ``default`` and ``rules``).

    Raises :class:`ConfigError` (without the file name: :func:`load_policy` adds it)."""
    if not isinstance(data, Mapping):
        raise ConfigError("the policy must be a mapping with 'default' and 'rules', "
                          f"got {type(data).__name__}")
    unknown = [str(key) for key in data if key not in _TOP_KEYS]
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(map(repr, unknown))} (a policy has 'default' and 'rules')")
    if "default" not in data:
        raise ConfigError("'default' is missing: say what clients no rule matches may do (read or write)")
    default = _access(data["default"], "'default'")
    items = data.get("rules") or []
    if not isinstance(items, list):
        raise ConfigError(f"'rules' must be a list of rules, got {type(items).__name__}")
    rules = tuple(_rule(index, item, resolver) for index, item in enumerate(items, start=1))
    return AccessPolicy(rules, default, source)


def load_policy(path: Path, *, resolver: Resolver = _resolve) -> AccessPolicy:
    """Read and check the policy file ``path``; :class:`ConfigError` names the file and the problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Access policy {path}: cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Access policy {path}: not valid YAML: {exc}") from None
    try:
        return parse_policy(data, source=Path(path), resolver=resolver)
    except ConfigError as exc:
        raise ConfigError(f"Access policy {path}: {exc}") from None


def policy_from_rules(rules: Iterable[Mapping[str, Any]], default: str = "read", *,
                      resolver: Resolver = _resolve) -> AccessPolicy:
    """A policy from rule mappings (as in the file), e.g. for embedding camioc in a program."""
    return parse_policy({"default": default, "rules": list(rules)}, source=Path("<rules>"), resolver=resolver)


__all__ = [
    "Access",
    "AccessPolicy",
    "Decision",
    "Rule",
    "client_address",
    "load_policy",
    "parse_policy",
    "policy_from_rules",
]
