"""The model-registry part of the ``WorkspaceStore`` contract, on SQLite and PostgreSQL (the
``db_url`` fixture), with real concurrent registrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runyard.errors import NotFound
from runyard.store.model_record import ModelFile, ModelRecord
from runyard.store.sqlalchemy.store import SqlWorkspaceStore

BLOB = "ab" * 32


@pytest.fixture
def store(db_url: str) -> Iterator[SqlWorkspaceStore]:
    s = SqlWorkspaceStore(db_url)
    yield s
    s.close()


def rec(name: str, **kw: object) -> ModelRecord:
    return ModelRecord(name=name, version=0, root="m.pkl", files=(ModelFile("m.pkl", BLOB, 3),),
                       total_size=3, created_at=1.0, **kw)  # type: ignore[arg-type]


def test_versions_get_list_update_delete(store: SqlWorkspaceStore) -> None:
    assert store.add_model_version(rec("a", tags={"s": "dev"})).version == 1
    assert store.add_model_version(rec("a", tags={"s": "prod"}, run_id="r1")).version == 2
    assert store.add_model_version(rec("b")).version == 1
    got = store.get_model("a")
    assert got is not None and (got.id, got.run_id, got.files) == (
        "a:2", "r1", (ModelFile("m.pkl", BLOB, 3),))
    assert store.get_model("a", 3) is None
    assert [m.id for m in store.list_models()] == ["a:2", "a:1", "b:1"]
    assert [m.id for m in store.list_models(latest=True)] == ["a:2", "b:1"]
    assert [m.id for m in store.list_models(tags={"s": "dev"})] == ["a:1"]
    assert [m.id for m in store.list_models(tags={"s": None})] == ["a:2", "a:1"]
    assert [m.id for m in store.list_models(run_id="r1")] == ["a:2"]
    up = store.update_model("a", 1, tags={"x": "1"}, remove_tags=["s"], properties={"p": "q"})
    assert (up.tags, up.properties) == ({"x": "1"}, {"p": "q"})
    with pytest.raises(NotFound):
        store.update_model("a", 9, tags={})
    assert store.model_blobs() == {BLOB}
    assert store.delete_model("a", 1) and not store.delete_model("a", 1)
    assert store.add_model_version(rec("a")).version == 3  # numbers are not reused


def test_concurrent_registrations_get_distinct_versions(db_url: str) -> None:
    SqlWorkspaceStore(db_url).close()  # migrate once
    stores = [SqlWorkspaceStore(db_url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    versions: list[int] = []
    errors: list[BaseException] = []

    def one(s: SqlWorkspaceStore) -> None:
        try:
            barrier.wait(30)
            versions.extend(s.add_model_version(rec("race")).version for _ in range(3))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    for s in stores:
        s.close()
    assert not errors
    assert sorted(versions) == list(range(1, 19))
