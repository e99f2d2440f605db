"""Registering large model files: the pipelined copy-and-hash into the snapshot store.

Large files are copied into the store in chunks while a second thread hashes the same chunks;
these tests pin what that must keep: a blob is named by the sha256 of its bytes (also when the
file changes meanwhile), the same bytes are stored once, an unchanged file is not read again,
and a failure leaves nothing registered and no temp file behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runyard import Workspace
from runyard.model import Model
from runyard.snapshots import store as store_mod

#: Bigger than the small-file limit and many chunks (more than the buffers in flight).
BIG = store_mod.SMALL_FILE_BYTES + 3 * store_mod.CHUNK_BYTES * store_mod.STREAM_BUFFERS + 12_345


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("ws", tmp_path / "ws")


def blobs(ws: Workspace) -> dict[str, bytes]:
    """Every blob in the store, by name."""
    root = ws.snapshots.root / "blobs"
    return {p.parent.name + p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def temp_files(ws: Workspace) -> list[Path]:
    tmp = ws.snapshots.root / "tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


def assert_blobs_named_by_content(ws: Workspace) -> None:
    for name, data in blobs(ws).items():
        assert hashlib.sha256(data).hexdigest() == name


def test_large_file_blob_is_its_sha256(ws: Workspace, tmp_path: Path) -> None:
    data = os.urandom(BIG)
    f = tmp_path / "model.bin"
    f.write_bytes(data)
    m = Model.register(ws, f, "big")
    digest = hashlib.sha256(data).hexdigest()
    (entry,) = m.serialize()["files"]
    assert entry["path"] == "model.bin" and entry["size"] == BIG
    assert blobs(ws) == {digest: data}
    assert ws.snapshots.blob_path(digest).read_bytes() == data
    assert temp_files(ws) == []
    out = tmp_path / "out"
    Model(ws, "big").download(str(out))
    assert (out / "model.bin").read_bytes() == data


def test_same_bytes_stored_once_and_unchanged_file_not_read_again(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(BIG)
    a, b = tmp_path / "a.bin", tmp_path / "b" / "b.bin"
    a.write_bytes(data)
    b.parent.mkdir()
    b.write_bytes(data)
    time.sleep(0.2)  # changed long enough ago for the stat cache to trust (see is_racy)
    copies: list[int] = []
    real = store_mod._copy_hashing

    def counting(src: int, dst: int) -> tuple[str, int]:
        copies.append(src)
        return real(src, dst)

    monkeypatch.setattr(store_mod, "_copy_hashing", counting)
    Model.register(ws, a, "m")
    Model.register(ws, b, "m")
    assert len(copies) == 2  # two different files: each read once
    assert list(blobs(ws)) == [hashlib.sha256(data).hexdigest()]  # ... and stored once
    assert temp_files(ws) == []  # the second copy was dropped
    third = Model.register(ws, a, "m")  # unchanged since the first time: the stat cache
    assert len(copies) == 2
    assert third.version == 3
    assert [f["blob"] for f in third.serialize()["files"]] == [hashlib.sha256(data).hexdigest()]


def test_folder_model_with_large_and_small_files(ws: Workspace, tmp_path: Path) -> None:
    big = os.urandom(BIG)
    folder = tmp_path / "net"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(big)
    (folder / "sub" / "copy.bin").write_bytes(big)  # the same bytes twice in one model
    (folder / "config.json").write_text('{"layers": 3}')
    m = Model.register(ws, folder, "net")
    files = {f["path"]: f for f in m.serialize()["files"]}
    assert sorted(files) == ["net/config.json", "net/sub/copy.bin", "net/weights.bin"]
    assert files["net/weights.bin"]["blob"] == files["net/sub/copy.bin"]["blob"] \
        == hashlib.sha256(big).hexdigest()
    assert files["net/weights.bin"]["size"] == BIG
    assert len(blobs(ws)) == 2
    assert_blobs_named_by_content(ws)
    assert temp_files(ws) == []
    out = tmp_path / "out"
    Model(ws, "net").download(str(out))
    assert (out / "net" / "sub" / "copy.bin").read_bytes() == big
    assert (out / "net" / "config.json").read_text() == '{"layers": 3}'


def test_file_changing_during_registration_is_stored_under_its_true_hash(
        ws: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(os.urandom(BIG))
    stop = threading.Event()

    def scribble() -> None:  # rewrite random chunks in place while the file is registered
        with open(f, "r+b", buffering=0) as out:
            while not stop.is_set():
                out.seek(int.from_bytes(os.urandom(4), "little") % BIG)
                out.write(os.urandom(4096))

    writer = threading.Thread(target=scribble)
    writer.start()
    try:
        models = [Model.register(ws, f, "moving") for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    stored = blobs(ws)
    assert_blobs_named_by_content(ws)
    for m in models:
        (entry,) = m.serialize()["files"]
        assert entry["blob"] in stored
        assert len(stored[entry["blob"]]) == entry["size"]
    assert temp_files(ws) == []


def run_bounded(fn: Any, seconds: float = 60) -> BaseException | None:
    """Run ``fn`` on a thread; the exception it raised (None if none). Fails on a hang."""
    raised: list[BaseException] = []

    def body() -> None:
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            raised.append(err)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "registration hung"
    return raised[0] if raised else None


def test_write_failure_leaves_nothing_registered(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(os.urandom(BIG))
    written: list[int] = []
    real = store_mod.write_all

    def disk_fills_up(fd: int, data: bytes | memoryview) -> None:
        if len(written) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data))
        real(fd, data)

    monkeypatch.setattr(store_mod, "write_all", disk_fills_up)
    err = run_bounded(lambda: Model.register(ws, f, "full"))
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert Model.list(ws, name="full") == []
    assert blobs(ws) == {}
    assert temp_files(ws) == []
    monkeypatch.undo()
    assert Model.register(ws, f, "full").version == 1  # and it works once there is room
    assert_blobs_named_by_content(ws)


def test_hash_failure_is_raised_not_hung(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(os.urandom(BIG))

    class BrokenHash:
        def update(self, data: memoryview) -> None:
            raise MemoryError("hash state lost")

        def hexdigest(self) -> str:
            raise AssertionError("never reached")

    class FakeHashlib:
        @staticmethod
        def sha256(data: bytes = b"") -> Any:
            return hashlib.sha256(data) if data else BrokenHash()

    monkeypatch.setattr(store_mod, "hashlib", FakeHashlib)
    err = run_bounded(lambda: Model.register(ws, f, "broken"))
    assert isinstance(err, MemoryError)
    assert Model.list(ws, name="broken") == []
    assert blobs(ws) == {}
    assert temp_files(ws) == []
