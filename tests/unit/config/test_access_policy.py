"""The access policy: file format, every mistake refused with a message naming it, matching."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from camioc.config.access import Access, AccessPolicy, client_address, load_policy, parse_policy
from camioc.errors import ConfigError

NAMES = {"opi01.example.org": ["10.1.2.7", "fd00::7"], "localhost": ["127.0.0.1", "::1"]}


def resolver(name: str) -> list[str]:
    if name not in NAMES:
        raise OSError(f"[Errno -2] Name or service not known: {name}")
    return NAMES[name]


def policy(text: str, tmp_path: Path) -> AccessPolicy:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_policy(path, resolver=resolver)


EXAMPLE = """\
default: read
rules:
  - name: expert on the console
    hosts: opi01.example.org
    users: [expert]
    access: write
  - hosts: 10.1.2.7
    access: read
  - name: control room
    hosts: [10.1.2.0/24, "fd00::/16", localhost]
    access: write
  - users: operator
    access: write
"""


def test_the_readme_example_decides_first_match(tmp_path: Path) -> None:
    rules = policy(EXAMPLE, tmp_path)
    assert rules.decide("10.1.2.7", "expert").rule is rules.rules[0]
    assert not rules.may_write("10.1.2.7", "someone")  # rule 2 comes before the network
    assert not rules.may_write("10.1.2.7")  # REST: no user
    assert rules.may_write("10.1.2.8") and rules.may_write("::ffff:10.1.2.8")
    assert rules.may_write("fd00::1234") and rules.may_write("127.0.0.1") and rules.may_write("::1")
    assert not rules.may_write("192.168.0.1") and rules.decide("192.168.0.1").rule is None
    assert rules.may_write("192.168.0.1", "operator")  # users-only rule: CA
    assert not rules.may_write(None) and not rules.may_write("not an address")
    assert rules.default is Access.READ


def test_refusal_names_host_user_rule_and_file(tmp_path: Path) -> None:
    rules = policy(EXAMPLE, tmp_path)
    message = rules.write_refusal("caput X:Y", "10.1.2.7", "bob")
    assert message is not None
    assert "host 10.1.2.7" in message and "user 'bob'" in message and "rule 2" in message
    assert str(tmp_path / "policy.yaml") in message
    assert "the default" in (rules.write_refusal("POST /x", "192.168.0.1") or "")
    assert rules.write_refusal("POST /x", "10.1.2.8") is None


def test_no_policy_lets_everyone_write() -> None:
    open_policy = AccessPolicy.open()
    assert open_policy.is_open and open_policy.may_write("192.168.0.1") and open_policy.may_write(None)
    assert "every client may write" in open_policy.describe()


def test_client_addresses() -> None:
    assert str(client_address("::ffff:10.0.0.1")) == "10.0.0.1"
    assert str(client_address("fe80::1%eth0")) == "fe80::1"
    assert str(client_address("[::1]")) == "::1"
    assert client_address("") is None and client_address(None) is None and client_address("host") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("rules: []\n", "'default' is missing"),
    ("default: maybe\n", "'default' must be 'read' or 'write'"),
    ("default: read\nrule: []\n", "unknown key(s) 'rule'"),
    ("- a\n", "must be a mapping"),
    ("default: read\nrules: {hosts: x}\n", "'rules' must be a list"),
    ("default: read\nrules:\n  - hosts: 10.0.0.1\n", "rule 1: 'access' is missing"),
    ("default: read\nrules:\n  - access: write\n", "rule 1: give 'hosts' and/or 'users'"),
    ("default: read\nrules:\n  - {hosts: 10.0.0.1, access: write}\n  - {hosts: 10.0.0.5/24, access: write}\n",
     "rule 2: hosts: '10.0.0.5/24' is not a network"),
    ("default: read\nrules:\n  - {hosts: no.such.host, access: write}\n", "'no.such.host' does not resolve"),
    ("default: read\nrules:\n  - {hosts: [], access: write}\n", "non-empty list"),
    ("default: read\nrules:\n  - {hosts: [{a: 1}], access: write}\n", "entries must be non-empty names"),
    ("default: read\nrules:\n  - {name: ops, users: x, access: admin}\n", "rule 1 'ops': 'access' must be"),
    ("default: read\nrules:\n  - {users: x, access: write, acces: read}\n", "unknown key(s) 'acces'"),
    ("default: read\nrules: [[\n", "not valid YAML"),
])
def test_mistakes_are_refused_naming_them(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        policy(text, tmp_path)
    assert expected in str(raised.value)
    assert str(raised.value).startswith(f"Access policy {tmp_path / 'policy.yaml'}: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_policy(tmp_path / "nope.yaml")


def test_default_write_with_read_only_exceptions() -> None:
    rules = parse_policy({"default": "write", "rules": [{"hosts": "10.9.0.0/16", "access": "read"}]},
                         resolver=resolver)
    assert rules.may_write("10.8.0.1") and not rules.may_write("10.9.3.4")
    assert not rules.is_open


def test_the_readme_example_policy_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### Security: who may write", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    rules = parse_policy(yaml.safe_load(example), source=Path("access.yaml"), resolver=resolver)
    assert [rule.access for rule in rules.rules] == [Access.WRITE, Access.WRITE] and rules.default is Access.READ
    assert rules.may_write("10.1.2.3") and rules.may_write("10.7.0.1", "expert") and not rules.may_write("10.7.0.1")
