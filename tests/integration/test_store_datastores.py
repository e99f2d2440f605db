"""Datastore rows of the store, on SQLite and PostgreSQL (same ``db_url`` fixture as the store
contract suite): create/AlreadyExists, replace, one default at a time, delete with secrets."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runyard.errors import AlreadyExists, NotFound
from runyard.store.base import DatastoreRecord
from runyard.store.sqlalchemy.store import SqlWorkspaceStore

pytestmark = pytest.mark.integration


@pytest.fixture
def store(db_url: str) -> Iterator[SqlWorkspaceStore]:
    s = SqlWorkspaceStore(db_url)
    yield s
    s.close()


def rec(name: str, *, default: bool = False, kind: str = "local",
        config: dict[str, str] | None = None) -> DatastoreRecord:
    return DatastoreRecord(name, kind, config or {"path": f"/data/{name}"}, default, 1.0, 1.0)


def defaults(store: SqlWorkspaceStore) -> list[str]:
    return [r.name for r in store.list_datastores() if r.is_default]


def test_create_get_list_and_already_exists(store: SqlWorkspaceStore) -> None:
    store.create_datastore(rec("b"), {"account_key": b"cipher"})
    store.create_datastore(rec("a", default=True))
    assert [r.name for r in store.list_datastores()] == ["a", "b"]
    got = store.get_datastore("b")
    assert got is not None and got.config == {"path": "/data/b"} and not got.is_default
    assert store.get_datastore("zz") is None
    with pytest.raises(AlreadyExists, match="'b'"):
        store.create_datastore(rec("b"), {"account_key": b"other"})
    assert store.get_secrets("datastore/b") == {"account_key": b"cipher"}


def test_replace_swaps_config_and_secrets(store: SqlWorkspaceStore) -> None:
    store.create_datastore(rec("b"), {"account_key": b"one"})
    store.create_datastore(rec("b", config={"path": "/new"}), {"sas_token": b"two"},
                           replace=True)
    got = store.get_datastore("b")
    assert got is not None and got.config == {"path": "/new"}
    assert store.get_secrets("datastore/b") == {"sas_token": b"two"}


def test_exactly_one_default(store: SqlWorkspaceStore) -> None:
    for n in ("a", "b", "c"):
        store.create_datastore(rec(n, default=n == "a"))
    store.set_default_datastore("c")
    assert defaults(store) == ["c"]
    store.create_datastore(rec("d", default=True))
    assert defaults(store) == ["d"]
    with pytest.raises(NotFound, match="nope"):
        store.set_default_datastore("nope")
    assert defaults(store) == ["d"]


def test_concurrent_set_default_leaves_one(store: SqlWorkspaceStore) -> None:
    names = [f"s{i}" for i in range(6)]
    for n in names:
        store.create_datastore(rec(n))
    errors: list[BaseException] = []

    def flip(n: str) -> None:
        try:
            for _ in range(5):
                store.set_default_datastore(n)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(defaults(store)) == 1


def test_delete_removes_secrets(store: SqlWorkspaceStore) -> None:
    store.create_datastore(rec("b"), {"account_key": b"cipher"})
    store.delete_datastore("b")
    assert store.get_datastore("b") is None and store.get_secrets("datastore/b") == {}
    with pytest.raises(NotFound):
        store.delete_datastore("b")
