"""The CA server's environment: latency defaults and the bind interface follow camioc's options."""

from __future__ import annotations

from camioc.ioc import configure_caproto_environment


def test_ca_listens_on_the_rest_interface_unless_the_user_chose():
    env: dict[str, str] = {}
    configure_caproto_environment(env, interface="127.0.0.1")
    assert env["EPICS_CAS_INTF_ADDR_LIST"] == "127.0.0.1"
    env = {"EPICS_CAS_INTF_ADDR_LIST": "10.0.0.5"}
    configure_caproto_environment(env, interface="127.0.0.1")
    assert env["EPICS_CAS_INTF_ADDR_LIST"] == "10.0.0.5"


def test_every_interface_leaves_caproto_its_default():
    env: dict[str, str] = {}
    configure_caproto_environment(env, interface="0.0.0.0")
    assert "EPICS_CAS_INTF_ADDR_LIST" not in env
    assert env["CAPROTO_SERVER_MAX_LATENCY_SEC"] == "0.02"
