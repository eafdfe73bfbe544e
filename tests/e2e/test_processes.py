"""The ports processes under test are given: never the same twice, never one in use, never one an
outgoing connection could take first."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.processes import SERVICE_PORTS, free_port


def test_free_ports_are_distinct_unused_and_below_the_ephemeral_range() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", SERVICE_PORTS.start))
        ports = [free_port() for _ in range(200)]

    assert len(set(ports)) == len(ports)
    assert SERVICE_PORTS.start not in ports
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port in SERVICE_PORTS and port < low for port in ports)
