"""The dataset part of the ``WorkspaceStore`` contract, on SQLite and PostgreSQL (the
``db_url`` fixture), with real concurrent registrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runyard.store.dataset_record import DatasetFile, DatasetRecord
from runyard.store.sqlalchemy.store import SqlWorkspaceStore

SHA = "cd" * 32


@pytest.fixture
def store(db_url: str) -> Iterator[SqlWorkspaceStore]:
    s = SqlWorkspaceStore(db_url)
    yield s
    s.close()


def rec(name: str, **kw: object) -> DatasetRecord:
    return DatasetRecord(name=name, version=0, kind="tabular",
                         definition={"paths": [["lake", "*.csv"]], "options": {"header": True}},
                         files=(DatasetFile("lake", "a.csv", 3, SHA),), total_size=3,
                         created_at=1.0, **kw)  # type: ignore[arg-type]


def test_versions_get_list(store: SqlWorkspaceStore) -> None:
    assert store.add_dataset_version(rec("a", tags={"s": "dev"})).version == 1
    assert store.add_dataset_version(rec("a", description="d")).version == 2
    assert store.add_dataset_version(rec("b")).version == 1
    got = store.get_dataset("a")
    assert got is not None and (got.id, got.description, got.files, got.kind) == (
        "a:2", "d", (DatasetFile("lake", "a.csv", 3, SHA),), "tabular")
    assert got.definition == {"paths": [["lake", "*.csv"]], "options": {"header": True}}
    one = store.get_dataset("a", 1)
    assert one is not None and one.tags == {"s": "dev"}
    assert store.get_dataset("a", 3) is None and store.get_dataset("zz") is None
    assert [d.id for d in store.list_datasets()] == ["a:2", "a:1", "b:1"]
    assert [d.id for d in store.list_datasets(latest=True)] == ["a:2", "b:1"]
    assert [d.id for d in store.list_datasets("b")] == ["b:1"]


def test_concurrent_registrations_get_distinct_versions(db_url: str) -> None:
    SqlWorkspaceStore(db_url).close()  # migrate once
    stores = [SqlWorkspaceStore(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    versions: list[int] = []
    errors: list[BaseException] = []

    def one(s: SqlWorkspaceStore) -> None:
        try:
            barrier.wait(30)
            versions.extend(s.add_dataset_version(rec("race")).version for _ in range(3))
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
    assert sorted(versions) == list(range(1, 13))
