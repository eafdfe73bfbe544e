"""NetworkPolicy egress to Kafka, the database and S3: narrowed to the configured addresses when
they are IPs, any destination on the values' ports when they are names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from marketsense.common.serve import SERVICES
from tests.deploy.chart_support import (
    documents,
    find,
    kubeconform,
    kubernetes_schema_dir,
    render_text,
)

pytestmark = pytest.mark.timeout(300)

BY_IP = [
    "settings.kafka_bootstrap_servers=10.0.0.11:9093\\,10.0.0.12",
    "settings.s3_endpoint_url=http://10.0.1.5:9000",
    "networkPolicy.database.address=10.0.2.0/24:6432",
]
BY_NAME = [
    "settings.kafka_bootstrap_servers=kafka-0.brokers:9093",
    "settings.s3_endpoint_url=https://minio.storage",
    "networkPolicy.database.address=db-rw.databases",
]


def egress_of(docs: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    """The egress rules of one component's NetworkPolicy."""
    [policy] = [
        p
        for p in find(docs, "NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == component
    ]
    rules: list[dict[str, Any]] = policy["spec"]["egress"]
    return rules


def rule_pairs(rules: list[dict[str, Any]]) -> set[tuple[str | None, int]]:
    """(ipBlock CIDR or None for anywhere, TCP port) for each destination a rule allows."""
    pairs = set()
    for rule in rules:
        peers = [peer.get("ipBlock", {}).get("cidr") for peer in rule.get("to", [])] or [None]
        pairs |= {(cidr, port["port"]) for cidr in peers for port in rule["ports"]}
    return pairs


def test_ip_addresses_narrow_kafka_database_and_s3_egress_to_them_on_their_ports(
    tmp_path: Path,
) -> None:
    text = render_text(sets=BY_IP)
    docs = documents(text)

    narrowed = {
        ("10.0.0.11/32", 9093),  # a bootstrap server's own port...
        ("10.0.0.12/32", 9092),  # ...or Kafka's when it names none
        ("10.0.2.0/24", 6432),  # a CIDR is kept as given
        ("10.0.1.5/32", 9000),
    }
    for service in SERVICES:
        pairs = rule_pairs(egress_of(docs, service))
        assert narrowed <= pairs, service
        # Nothing else reaches these ports: no rule to anywhere on them is left.
        assert not {(None, port) for port in (9092, 9093, 5432, 6432, 9000)} & pairs, service
    assert rule_pairs(egress_of(docs, "migrations")) - {(None, 53)} == {("10.0.2.0/24", 6432)}
    assert "# kafka: only the configured IP addresses, each on the port it names." in text
    done = kubeconform(yaml.safe_dump_all(docs), kubernetes_schema_dir(tmp_path, docs))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["summary"]["invalid"] == 0


def test_hostnames_keep_the_values_destinations_on_their_ports_and_say_why() -> None:
    text = render_text(sets=[*BY_NAME, "networkPolicy.objectStore.ports={443}"])
    docs = documents(text)

    for service in SERVICES:
        pairs = rule_pairs(egress_of(docs, service))
        # A NetworkPolicy cannot match a DNS name: any destination on the values' ports.
        assert {(None, 9092), (None, 5432), (None, 443)} <= pairs, service
        assert not any(cidr for cidr, _ in pairs if cidr and cidr.startswith("10.")), service
    for dest, name in [
        ("kafka", "kafka-0.brokers"),
        ("database", "db-rw.databases"),
        ("objectStore", "minio.storage"),
    ]:
        assert f"# {dest}: {name} is a name, which a NetworkPolicy" in text, dest


def test_a_to_given_in_the_values_wins_over_an_ip_address() -> None:
    peer = "networkPolicy.kafka.to[0].podSelector.matchLabels.app=kafka"
    docs = documents(render_text(sets=[*BY_IP, peer]))

    [kafka] = [r for r in egress_of(docs, "ingestion") if "podSelector" in r.get("to", [{}])[0]]
    assert kafka["to"] == [{"podSelector": {"matchLabels": {"app": "kafka"}}}]
    assert [p["port"] for p in kafka["ports"]] == [9092]
