"""The lifecycle routes through the registry client against a served registry: archive,
alias deletion, description edits, comparison, the bundle download and the audit log."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketsense.common.api_client import ApiError
from marketsense.registry.client import RegistryClient
from tests.served_registry_support import (
    BACKENDS,
    Keys,
    ServedRegistry,
    made_keys,
    model_name,
    predictor_maker,
    push,
    served_registry,
)


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedRegistry]:
    """The real registry app under uvicorn in a thread, on a free loopback port."""
    with served_registry(request, tmp_path) as served:
        yield served


def test_the_client_walks_a_version_through_its_lifecycle(
    registry: ServedRegistry, tmp_path: Path
) -> None:
    keys: Keys = made_keys(registry)
    name = model_name()
    make = predictor_maker(tmp_path)
    first = push(registry, keys, name, make(0.6))
    second = push(registry, keys, name, make(0.6))
    with RegistryClient(registry.url, keys.approver) as client:
        client.set_alias(name, "production", first, reason="first")
        client.set_alias(name, "staging", second, reason="trial")
        with pytest.raises(ApiError) as production:
            client.archive(name, first, "superseded")
        deleted = client.delete_alias(name, "staging", "trial over")
        archived = client.archive(name, second, "claimed metrics were inflated")
        described = client.describe_model(name, "the baseline", reason="say what it is")
        version = client.describe_version(name, first, "first cut")
        compared = client.compare(name, first, second)
        bundle = client.download_bundle(name, second, tmp_path / "bundle.tar.gz")
        history = client.history(name, "staging")
        page = client.audit(model=name, limit=2)
        rest = client.audit(model=name, limit=2, cursor=page.next_cursor)
        archives = client.audit(model=name, action="archive")

    assert production.value.status == 409
    assert "roll back" in production.value.detail
    assert (deleted.action, deleted.to_version) == ("delete", None)
    assert archived.archived_by is not None
    assert archived.archive_reason == "claimed metrics were inflated"
    assert described.description == "the baseline"
    assert version.description == "first cut"
    assert (compared.a.version, compared.b.version) == (first, second)
    assert compared.b.archived_at == archived.archived_at
    with tarfile.open(bundle, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "model.onnx"]
    assert [c.action for c in history] == ["delete", "promote"]
    assert [e.action for e in page.items + rest.items] == [
        "description_edited",
        "description_edited",
        "archive",
        "alias_deleted",
    ]
    assert [(e.version, e.reason) for e in archives.items] == [
        (second, "claimed metrics were inflated")
    ]
