"""One behavioural suite for the object store, run on the folder store and on real S3."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest

from marketsense.common.errors import NonRetryableError, ObjectIntegrityError, ObjectNotFound
from marketsense.common.events import ObjectRef
from marketsense.common.store import FileStore, ObjectStore

BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/etc/passwd", id="leading-slash"),
    pytest.param("../outside", id="parent-first"),
    pytest.param("raw/../../outside", id="parent-inside"),
    pytest.param("raw/..", id="parent-last"),
]


async def test_put_then_get_round_trips_bytes_with_a_correct_reference(
    store: ObjectStore,
) -> None:
    data = b"date,close\n2026-11-20,101.5\n" * 100

    ref = await store.put("raw/2026-11-20/run-1/AAA/bars.parquet", data)

    assert ref.uri == f"{store.base_uri}/raw/2026-11-20/run-1/AAA/bars.parquet"
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert store.key_for(ref.uri) == "raw/2026-11-20/run-1/AAA/bars.parquet"
    assert await store.get(ref) == data


async def test_put_of_empty_bytes_round_trips(store: ObjectStore) -> None:
    ref = await store.put("empty.bin", b"")

    assert ref.size == 0
    assert ref.sha256 == hashlib.sha256(b"").hexdigest()
    assert await store.get(ref) == b""


async def test_put_overwrites_and_the_old_reference_no_longer_verifies(
    store: ObjectStore,
) -> None:
    old = await store.put("k", b"first version")
    new = await store.put("k", b"second version")

    assert await store.get(new) == b"second version"
    with pytest.raises(ObjectIntegrityError, match="checksum mismatch"):
        await store.get(old)


async def test_get_of_object_tampered_with_after_put_raises_integrity_error_naming_uri(
    store: ObjectStore,
) -> None:
    ref = await store.put("features/AAA.parquet", b"the real bytes")
    # Same length, different bytes: only the checksum can tell.
    await store._write("features/AAA.parquet", b"the fake bytes")

    with pytest.raises(ObjectIntegrityError) as caught:
        await store.get(ref)

    assert ref.uri in str(caught.value)
    assert "checksum mismatch" in str(caught.value)


async def test_get_with_a_reference_carrying_a_wrong_sha256_raises_integrity_error(
    store: ObjectStore,
) -> None:
    ref = await store.put("a/b.bin", b"payload")
    wrong = ObjectRef(uri=ref.uri, sha256="0" * 64, size=ref.size)

    with pytest.raises(ObjectIntegrityError, match=re.escape(wrong.uri)):
        await store.get(wrong)


async def test_get_with_a_reference_carrying_a_wrong_size_raises_integrity_error(
    store: ObjectStore,
) -> None:
    ref = await store.put("a/b.bin", b"payload")
    wrong = ObjectRef(uri=ref.uri, sha256=ref.sha256, size=ref.size + 1)

    with pytest.raises(ObjectIntegrityError, match=re.escape(wrong.uri)):
        await store.get(wrong)


async def test_get_of_missing_object_raises_object_not_found(store: ObjectStore) -> None:
    ref = ObjectRef(uri=store.uri_for("never/written.bin"), sha256="0" * 64, size=0)

    with pytest.raises(ObjectNotFound, match=re.escape(store.uri_for("never/written.bin"))):
        await store.get(ref)
    with pytest.raises(ObjectNotFound):
        await store.read_key("never/written.bin")


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_put_with_a_bad_key_is_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="bad object key"):
        await store.put(key, b"x")


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_reference_with_a_bad_key_is_rejected(store: ObjectStore, key: str) -> None:
    ref = ObjectRef(uri=f"{store.base_uri}/{key}", sha256="0" * 64, size=1)

    with pytest.raises(ValueError, match="bad object key") as raised:
        await store.get(ref)
    # A reference that escapes the store is bad input: the bus must dead-letter it, not retry.
    assert isinstance(raised.value, NonRetryableError)


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_exists_and_delete_with_a_bad_key_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="bad object key"):
        await store.exists(key)
    with pytest.raises(ValueError, match="bad object key"):
        await store.delete(key)


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("s3://some-other-bucket/raw/AAA.parquet", id="other-bucket"),
        pytest.param("file:///etc/passwd", id="other-folder"),
        pytest.param("https://example.com/raw/AAA.parquet", id="other-scheme"),
    ],
)
async def test_reference_to_another_store_is_refused(store: ObjectStore, uri: str) -> None:
    with pytest.raises(NonRetryableError, match="is not in this object store"):
        await store.get(ObjectRef(uri=uri, sha256="0" * 64, size=1))


async def test_reference_to_a_sibling_prefix_sharing_the_base_name_is_refused(
    store: ObjectStore,
) -> None:
    # `<base>-other/key` starts with the base URI as text but is not inside the store.
    uri = store.base_uri.rstrip("/") + "-other/key.bin"

    with pytest.raises(NonRetryableError, match="is not in this object store"):
        await store.get(ObjectRef(uri=uri, sha256="0" * 64, size=1))


async def test_exists_is_true_after_put_and_false_after_delete(store: ObjectStore) -> None:
    assert not await store.exists("x/y.bin")

    await store.put("x/y.bin", b"data")
    assert await store.exists("x/y.bin")
    assert not await store.exists("x/other.bin")

    await store.delete("x/y.bin")
    assert not await store.exists("x/y.bin")
    with pytest.raises(ObjectNotFound):
        await store.read_key("x/y.bin")


async def test_delete_of_an_absent_object_is_fine(store: ObjectStore) -> None:
    await store.delete("never/there.bin")

    assert not await store.exists("never/there.bin")


async def test_delete_many_removes_the_keys_given_absent_ones_included_and_keeps_the_rest(
    store: ObjectStore,
) -> None:
    for name in ("a", "b", "c"):
        await store.put(f"raw/{name}.bin", name.encode())

    await store.delete_many(["raw/a.bin", "raw/c.bin", "raw/never.bin"])
    await store.delete_many([])

    assert [await store.exists(f"raw/{n}.bin") for n in ("a", "b", "c")] == [False, True, False]


async def test_delete_many_with_a_bad_key_is_rejected(store: ObjectStore) -> None:
    with pytest.raises(NonRetryableError):
        await store.delete_many(["raw/ok.bin", "../outside"])


async def test_store_is_healthy_once_started(store: ObjectStore) -> None:
    assert await store.healthy()


async def test_file_store_readers_never_see_a_partial_object_during_overwrites(
    tmp_path: Path,
) -> None:
    # S3 PutObject is atomic by the server's contract; the folder store's rename is this code's.
    store = FileStore((tmp_path / "objects").as_uri())
    await store.start()
    # Large enough that a non-atomic write would be caught half-way by a reader.
    versions = [bytes([i]) * (256 * 1024 + i) for i in range(8)]
    await store.put("hot/object.bin", versions[0])
    writes = 60
    reads: list[bytes] = []
    done = asyncio.Event()

    async def writer() -> None:
        for n in range(writes):
            await store.put("hot/object.bin", versions[n % len(versions)])
        done.set()

    async def reader() -> None:
        while not done.is_set():
            reads.append(await store.read_key("hot/object.bin"))

    await asyncio.gather(writer(), reader(), reader(), reader())

    assert len(reads) >= writes // 2, "readers did not overlap the writes"
    torn = [len(r) for r in reads if r not in versions]
    assert torn == [], f"{len(torn)} of {len(reads)} reads saw a partial object"
    leftovers = [p.name for p in store.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
