"""Datasets as run inputs and output datasets on the local target: real runner and script
subprocesses, real SQLite, real local-folder datastores, the real workspace dataset cache.

One workspace per module (runs are the slow part); every test uses its own datastore paths,
input names and file bytes, so the shared content-addressed cache cannot couple them.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runyard import Experiment, InvalidParameter, NotFound, Run, ScriptRunConfig, Workspace
from runyard.dataio import OutputFileDatasetConfig
from runyard.dataset import Dataset
from runyard.datastore import Datastore
from runyard.errors import DatasetChanged
from runyard.model import Model
from runyard.secrets import ENV_CONFIG_HOME
from runyard.store.base import RunFilter
from support import write

pytestmark = pytest.mark.integration

ROOT = os.geteuid() == 0

#: The script every input test runs: what it received, as JSON in outputs/probe.json.
PROBE = """
    import hashlib, json, os, stat, sys
    from runyard import Run

    def sha(path):
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()

    def listing(path):
        if os.path.isfile(path):
            return {os.path.basename(path): open(path).read()}
        out = {}
        for d, _, names in os.walk(path):
            for n in names:
                full = os.path.join(d, n)
                out[os.path.relpath(full, path)] = open(full).read()
        return out

    def files_of(path):
        if os.path.isfile(path):
            return [path]
        return sorted(os.path.join(d, n) for d, _, ns in os.walk(path) for n in ns)

    args = sys.argv[1:]
    write = [a.split("=", 1)[1] for a in args if a.startswith("--write=")]
    write = write[0].split(",") if write else []
    run = Run.get_context()
    report = {"argv": args, "euid": os.geteuid(), "inputs": {},
              "env": {k: v for k, v in os.environ.items()
                      if k.startswith("AZUREML_DATAREFERENCE_")}}
    for name, value in sorted(run.input_datasets.items()):
        if isinstance(value, str):
            entry = {"path": value, "is_file": os.path.isfile(value),
                     "files": listing(value),
                     "modes": {os.path.relpath(f, value) if f != value else
                               os.path.basename(f): stat.S_IMODE(os.stat(f).st_mode)
                               for f in files_of(value)}}
            if name in write:
                first = files_of(value)[0]
                try:
                    with open(first, "a") as fh:
                        fh.write("SCRIBBLED")
                    entry["write"] = "ok"
                except PermissionError:
                    entry["write"] = "PermissionError"
                entry["after_write"] = open(first).read()
        else:
            df = value.to_pandas_dataframe()
            entry = {"type": type(value).__name__, "id": value.id, "name": value.name,
                     "version": value.version, "columns": [str(c) for c in df.columns],
                     "rows": df.values.tolist()}
        report["inputs"][name] = entry
    # after every write: how the other inputs' files read now
    report["reread"] = {n: listing(v) for n, v in run.input_datasets.items()
                        if isinstance(v, str)}
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/probe.json", "w") as fh:
        json.dump(report, fh)
    with open("outputs/model.pkl", "wb") as fh:
        fh.write(b"weights")
"""

#: The script every output test runs: fills the output folder, exits with --code.
WRITER = """
    import os, sys
    from runyard import Run
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    out = args["--out"]
    run = Run.get_context()
    assert os.path.isdir(out) and os.listdir(out) == [], out
    with open(os.path.join(out, "model.txt"), "w") as fh:
        fh.write("made by " + run.id)
    os.makedirs(os.path.join(out, "sub"))
    with open(os.path.join(out, "sub", "extra.txt"), "w") as fh:
        fh.write("extra")
    os.symlink(os.path.abspath(__file__), os.path.join(out, "link.txt"))
    sys.exit(int(args.get("--code", "0")))
"""


@dataclass
class Env:
    ws: Workspace
    lake: Datastore
    lake_dir: Path
    root: Path
    src: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("inputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_CONFIG_HOME, str(root / "config"))
        mp.delenv("RUNYARD_SECRET_KEY", raising=False)
        ws = Workspace.create("ws", root / "ws", max_concurrent_runs=4)
        lake_dir = root / "lake"
        for i, rel in enumerate(["data/a.csv", "data/b.csv", "data/sub/c.csv"]):
            write(lake_dir, rel, "x,y\n" + "".join(f"{i},{j}\n" for j in range(4)))
        write(lake_dir, "one/single.txt", "the single file\n")
        lake = Datastore.register_local_folder(ws, "lake", str(lake_dir))
        src = root / "src"
        write(src, "probe.py", PROBE)
        write(src, "writer.py", WRITER)
        yield Env(ws, lake, lake_dir, root, src)


def local_store(e: Env, name: str, files: dict[str, str]) -> tuple[Datastore, Path]:
    folder = e.root / name
    for rel, text in files.items():
        write(folder, rel, text)
    return Datastore.register_local_folder(e.ws, name, str(folder)), folder


def submit(e: Env, script: str, args: list[Any], exp: str = "inputs") -> Run:
    return Experiment(e.ws, exp).submit(ScriptRunConfig(str(e.src), script, arguments=args))


def probe(e: Env, run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (e.ws.run_dir(run.id) / "artifacts/outputs/probe.json").read_text())
    return data


def blob(e: Env, sha: str) -> Path:
    return e.ws.data_dir / "cache" / "datasets" / sha[:2] / sha


def sha_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def all_runs(e: Env) -> list[str]:
    return sorted(r.id for r in e.ws.store.list_runs(RunFilter(top_level_only=False)))


def run_folders(e: Env) -> list[str]:
    runs = e.ws.data_dir / "runs"
    return sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []


class NothingStored:
    """Asserts a block stored no run and made no run folder."""

    def __init__(self, e: Env) -> None:
        self.e = e

    def __enter__(self) -> NothingStored:
        self.runs, self.folders = all_runs(self.e), run_folders(self.e)
        return self

    def __exit__(self, *exc: object) -> None:
        assert all_runs(self.e) == self.runs
        assert run_folders(self.e) == self.folders


# -- file datasets: mount, download, single file ----------------------------------------------
@pytest.fixture(scope="module")
def file_run(env: Env) -> tuple[Run, dict[str, Any]]:
    files = Dataset.File.from_files((env.lake, "data/**")).register(env.ws, "files")
    one = Dataset.File.from_files((env.lake, "one/single.txt")).register(env.ws, "one")
    mount = files.as_named_input("m").as_mount()
    down = files.as_named_input("d").as_download()
    writes = "d" if ROOT else "m,d"  # root writes through 0444: only the bits are checked
    run = submit(env, "probe.py", ["--m", mount, "--d", down,
                                   "--one", one.as_named_input("one").as_mount(),
                                   "--again", mount, f"--write={writes}"])
    run.wait_for_completion()
    return run, probe(env, run)


def test_mount_and_download_give_folders_of_the_registered_bytes(
        env: Env, file_run: tuple[Run, dict[str, Any]]) -> None:
    run, got = file_run
    assert run.get_status() == "Completed"
    registered = {rel: (env.lake_dir / "data" / rel).read_text()
                  for rel in ("a.csv", "b.csv", "sub/c.csv")}
    argv = got["argv"]
    m, d = got["inputs"]["m"], got["inputs"]["d"]
    assert argv[1] == m["path"] and argv[3] == d["path"]
    assert argv[7] == m["path"]  # the same binding twice renders the same path
    assert m["path"] != d["path"]
    assert not m["is_file"] and not d["is_file"]
    # exactly the dataset's files (nothing of runyard's own in the folder); mount: re-read
    # after the writes, nothing changed; download: what was read before writing
    assert m["files"] == registered and got["reread"]["m"] == registered
    assert d["files"] == registered
    # the download is the run's own copy, gone once the run ended (a mount may be a view
    # shared by the runs of this host)
    assert Path(d["path"]).name == "d" and not Path(d["path"]).exists()
    assert not Path(m["path"]).is_relative_to(Path(d["path"]).parent)


def test_single_file_dataset_renders_as_the_file(file_run: tuple[Run, dict[str, Any]]) -> None:
    _, got = file_run
    one = got["inputs"]["one"]
    assert one["is_file"] and Path(one["path"]).name == "single.txt"
    assert got["argv"][5] == one["path"]
    assert one["files"] == {"single.txt": "the single file\n"}


def test_mount_is_read_only_download_is_a_private_copy(
        env: Env, file_run: tuple[Run, dict[str, Any]]) -> None:
    _, got = file_run
    m, d = got["inputs"]["m"], got["inputs"]["d"]
    assert set(m["modes"].values()) == {0o444}
    if got["euid"] != 0:
        assert m["write"] == "PermissionError"
        assert "SCRIBBLED" not in m["after_write"]
    else:
        assert "write" not in m  # root would write through the mode bits
    assert d["write"] == "ok" and d["after_write"].endswith("SCRIBBLED")
    assert all(mode & stat.S_IWUSR for mode in d["modes"].values())
    # the download copy was written; the mount (same dataset, linked cache) still reads the
    # registered bytes, and so does the workspace cache
    files = Dataset.get_by_name(env.ws, "files")
    for f in files.files:
        cached = blob(env, f.sha256)
        assert cached.is_file() and sha_file(cached) == f.sha256
        assert stat.S_IMODE(cached.stat().st_mode) == 0o444


def test_input_datasets_match_the_rendered_arguments(
        file_run: tuple[Run, dict[str, Any]]) -> None:
    _, got = file_run
    assert set(got["inputs"]) == {"m", "d", "one"}
    assert got["env"]["AZUREML_DATAREFERENCE_m"] == got["inputs"]["m"]["path"]
    assert got["env"]["AZUREML_DATAREFERENCE_one"] == got["inputs"]["one"]["path"]


def test_details_list_each_dataset_version_and_keep_the_tokens(
        env: Env, file_run: tuple[Run, dict[str, Any]]) -> None:
    run, _ = file_run
    details = run.get_details()
    assert details["runDefinition"]["arguments"] == [
        "--m", "DatasetConsumptionConfig:m", "--d", "DatasetConsumptionConfig:d",
        "--one", "DatasetConsumptionConfig:one", "--again", "DatasetConsumptionConfig:m",
        "--write=" + ("d" if ROOT else "m,d")]
    files = Dataset.get_by_name(env.ws, "files")
    total = sum(f.size for f in files.files)
    by_input = {i["consumptionDetails"]["inputName"]: i for i in details["inputDatasets"]}
    assert set(by_input) == {"m", "d", "one"}
    assert by_input["m"]["dataset"] == {"id": "files:1", "name": "files", "version": 1}
    assert by_input["m"]["consumptionDetails"]["mechanism"] == "Mount"
    assert by_input["d"]["consumptionDetails"]["mechanism"] == "Download"
    assert by_input["m"]["files"] == 3 and by_input["m"]["bytes"] == total
    assert by_input["m"]["manifestSha256"] == by_input["d"]["manifestSha256"]
    assert len(by_input["m"]["manifestSha256"]) == 64
    assert by_input["one"]["dataset"]["id"] == "one:1"
    assert by_input["one"]["files"] == 1
    assert by_input["one"]["bytes"] == len("the single file\n")
    assert by_input["one"]["manifestSha256"] != by_input["m"]["manifestSha256"]


def test_registered_model_lists_the_run_inputs_as_training_data(
        env: Env, file_run: tuple[Run, dict[str, Any]]) -> None:
    run, _ = file_run
    run.register_model("m", "outputs/model.pkl")
    model = Model(env.ws, "m")
    assert set(model.datasets) == {"training"}
    assert set(model.datasets["training"]) == {"files:1", "one:1"}
    # datasets given explicitly replace the run's inputs
    run.register_model("m2", "outputs/model.pkl",
                       datasets=[("validation", Dataset.get_by_name(env.ws, "one"))])
    assert Model(env.ws, "m2").datasets == {"validation": ["one:1"]}


# -- tabular datasets: direct -----------------------------------------------------------------
def test_tabular_direct_renders_its_id_and_reads_rows_with_its_steps(env: Env) -> None:
    tab = Dataset.Tabular.from_delimited_files((env.lake, "data/**/*.csv")).register(env.ws,
                                                                                    "tab")
    cut = tab.skip(3).take(5).register(env.ws, "tabcut")
    run = submit(env, "probe.py", ["--tab", tab.as_named_input("tab"),
                                   "--cut", cut.as_named_input("cut")])
    run.wait_for_completion()
    got = probe(env, run)
    assert got["argv"] == ["--tab", "tab:1", "--cut", "tabcut:1"]
    every = [[i, j] for i in range(3) for j in range(4)]  # files in path order
    t, c = got["inputs"]["tab"], got["inputs"]["cut"]
    assert t["type"] == "InputTabularDataset"
    assert (t["id"], t["name"], t["version"]) == ("tab:1", "tab", 1)
    assert t["columns"] == ["x", "y"] and t["rows"] == every
    assert c["id"] == "tabcut:1" and c["rows"] == every[3:8]
    details = run.get_details()
    mech = {i["consumptionDetails"]["inputName"]: i["consumptionDetails"]["mechanism"]
            for i in details["inputDatasets"]}
    assert mech == {"tab": "Direct", "cut": "Direct"}
    assert details["runDefinition"]["arguments"] == [
        "--tab", "DatasetConsumptionConfig:tab", "--cut", "DatasetConsumptionConfig:cut"]


# -- data references --------------------------------------------------------------------------
def test_data_references_render_as_paths_and_set_their_variables(env: Env) -> None:
    refs, _ = local_store(env, "refs", {"folder/x.txt": "ex", "folder/deep/y.txt": "why",
                                        "top.txt": "top"})
    sub = refs.path("folder").as_download()
    whole = refs.as_mount()
    name = sub.data_reference_name
    assert str(sub) == f"$AZUREML_DATAREFERENCE_{name}"
    assert str(whole) == "$AZUREML_DATAREFERENCE_refs"
    run = submit(env, "probe.py", ["--sub", sub, "--whole", whole,
                                   f"--inline=pre/{whole}/post"])
    run.wait_for_completion()
    got = probe(env, run)
    sub_path = got["env"][f"AZUREML_DATAREFERENCE_{name}"]
    whole_path = got["env"]["AZUREML_DATAREFERENCE_refs"]
    assert got["argv"] == ["--sub", sub_path, "--whole", whole_path,
                           f"--inline=pre/{whole_path}/post"]
    assert got["inputs"][name]["files"] == {"x.txt": "ex", os.path.join("deep", "y.txt"): "why"}
    assert got["inputs"]["refs"]["files"] == {"folder/x.txt": "ex", "folder/deep/y.txt": "why",
                                              "top.txt": "top"}
    assert set(got["inputs"]["refs"]["modes"].values()) == {0o444}  # mounted: read-only
    assert all(m & stat.S_IWUSR for m in got["inputs"][name]["modes"].values())  # a copy
    details = run.get_details()
    assert details["runDefinition"]["arguments"][:4] == [
        "--sub", f"$AZUREML_DATAREFERENCE_{name}", "--whole", "$AZUREML_DATAREFERENCE_refs"]


# -- output datasets --------------------------------------------------------------------------
def test_output_is_uploaded_under_the_run_id_and_registered(env: Env) -> None:
    out = OutputFileDatasetConfig("model_out", destination=(env.lake, "out/{run-id}")
                                  ).register_on_complete("outset")
    first = submit(env, "writer.py", ["--out", out], exp="outputs")
    first.wait_for_completion()
    assert first.get_status() == "Completed"
    dest = env.lake_dir / "out" / first.id
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()
                  ) == ["model.txt", "sub/extra.txt"]  # the symlink was not uploaded
    assert not (dest / "link.txt").exists() and not (dest / "link.txt").is_symlink()
    assert (dest / "model.txt").read_text() == f"made by {first.id}"
    ds1 = Dataset.get_by_name(env.ws, "outset")
    assert ds1.version == 1
    assert sorted(f.path for f in ds1.files) == [f"out/{first.id}/model.txt",
                                                 f"out/{first.id}/sub/extra.txt"]
    assert sorted(ds1.to_path()) == ["/model.txt", "/sub/extra.txt"]
    props = first.get_properties()
    assert props["runyard.output.model_out"] == f"lake:out/{first.id}"
    assert props["runyard.output.model_out.dataset"] == "outset:1"
    details = first.get_details()
    assert details["runDefinition"]["arguments"] == ["--out", "DatasetOutputConfig:model_out"]
    assert details["outputDatasets"] == [{"name": "model_out", "datastore": "lake",
                                          "path": f"out/{first.id}",
                                          "register": {"name": "outset", "description": None,
                                                       "tags": {}}}]
    assert not (env.ws.run_dir(first.id) / "artifacts" / ".runyard-outputs").exists()
    # a second run of the same config: its own folder, version 2
    second = submit(env, "writer.py", ["--out", out], exp="outputs")
    second.wait_for_completion()
    ds2 = Dataset.get_by_name(env.ws, "outset")
    assert ds2.version == 2
    assert sorted(f.path for f in ds2.files) == [f"out/{second.id}/model.txt",
                                                 f"out/{second.id}/sub/extra.txt"]
    assert second.get_properties()["runyard.output.model_out.dataset"] == "outset:2"
    assert Dataset.get_by_name(env.ws, "outset", 1).files == ds1.files


def test_failed_script_uploads_and_registers_nothing(env: Env) -> None:
    out = OutputFileDatasetConfig("fail_out", destination=(env.lake, "failed/{run-id}")
                                  ).register_on_complete("failset")
    run = submit(env, "writer.py", ["--out", out, "--code", "1"], exp="outputs")
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == "Failed"
    assert not (env.lake_dir / "failed").exists()
    with pytest.raises(NotFound):
        Dataset.get_by_name(env.ws, "failset")
    assert not any(k.startswith("runyard.output.") for k in run.get_properties())
    assert not (env.ws.run_dir(run.id) / "artifacts" / ".runyard-outputs").exists()


def test_output_kept_on_the_datastore_fails_the_run_and_registers_nothing(env: Env) -> None:
    out = OutputFileDatasetConfig("fixed_out", destination=(env.lake, "fixed/{output-name}")
                                  ).register_on_complete("fixedset")
    first = submit(env, "writer.py", ["--out", out], exp="outputs")
    first.wait_for_completion()
    dest = env.lake_dir / "fixed" / "fixed_out"
    assert (dest / "model.txt").read_text() == f"made by {first.id}"
    # the same path again, other bytes (no {run-id}): refused, the first run's file is kept
    second = submit(env, "writer.py", ["--out", out], exp="outputs")
    second.wait_for_completion(raise_on_error=False)
    assert second.get_status() == "Failed"
    message = second.get_details()["error"]["message"]
    assert "'fixed_out'" in message and "model.txt" in message and "{run-id}" in message
    assert (dest / "model.txt").read_text() == f"made by {first.id}"
    assert Dataset.get_by_name(env.ws, "fixedset").version == 1
    assert "runyard.output.fixed_out.dataset" not in second.get_properties()


def test_a_script_writing_its_mount_cannot_change_what_later_runs_read(env: Env) -> None:
    store, _ = local_store(env, "scribble", {"s.txt": "scribble test bytes\n"})
    ds = Dataset.File.from_files((store, "s.txt")).register(env.ws, "scrib")
    write(env.src, "overwrite.py", """
        import sys
        try:
            with open(sys.argv[1], "r+") as fh:
                fh.write("SCRIBBLE")  # same size: no size check can see it
        except PermissionError:
            pass
    """)
    first = submit(env, "overwrite.py", [ds.as_named_input("s").as_mount()])
    first.wait_for_completion()
    second = submit(env, "probe.py", ["--s", ds.as_named_input("s").as_download()])
    second.wait_for_completion()
    assert probe(env, second)["inputs"]["s"]["files"] == {"s.txt": "scribble test bytes\n"}


# -- refused before anything is stored ---------------------------------------------------------
def test_bad_names_are_refused_when_the_config_is_made(env: Env) -> None:
    one = Dataset.File.from_files((env.lake, "one/single.txt"))
    for bad in ("bad-name", "1x", "", "a b"):
        with pytest.raises(InvalidParameter, match="cannot name a run input"):
            one.as_named_input(bad)
        with pytest.raises(InvalidParameter, match="cannot name a run input"):
            OutputFileDatasetConfig(bad)
    # a data reference's name is only checked at submit (v1 allows any name on the object)
    ref = env.lake.path("one", data_reference_name="bad-name")
    with NothingStored(env), pytest.raises(InvalidParameter, match="bad-name"):
        submit(env, "probe.py", ["--r", ref], exp="bad")


def test_tabular_cannot_be_mounted_or_downloaded(env: Env) -> None:
    tab = Dataset.Tabular.from_delimited_files((env.lake, "data/a.csv"), validate=False)
    for how in ("as_mount", "as_download"):
        with pytest.raises(InvalidParameter, match=f"cannot be consumed as {how[3:]}") as info:
            getattr(tab.as_named_input("t"), how)()
        assert info.value.field == "mode"


def test_two_different_inputs_under_one_name_are_refused(env: Env) -> None:
    one = Dataset.File.from_files((env.lake, "one/single.txt"))
    tab = Dataset.Tabular.from_delimited_files((env.lake, "data/a.csv"), validate=False)
    for a, b in ((one.as_named_input("x").as_mount(), tab.as_named_input("x")),
                 (one.as_named_input("x").as_mount(), one.as_named_input("x").as_download()),
                 (one.as_named_input("x").as_mount(), OutputFileDatasetConfig("x"))):
        with NothingStored(env), pytest.raises(InvalidParameter, match="'x'"):
            submit(env, "probe.py", ["--a", a, "--b", b], exp="bad")


def test_bad_output_destinations_are_refused(env: Env) -> None:
    for path, why in (("out/{date}/{run-id}", "placeholders"), ("{run-id}}", "placeholders"),
                      ("../up/{run-id}", "destination"), ("out/{run-id}/../../x", "destination"),
                      ("/abs/{run-id}", "destination")):
        with pytest.raises(InvalidParameter, match=why):
            OutputFileDatasetConfig("o", destination=(env.lake, path))
    with pytest.raises(InvalidParameter, match="destination"):
        OutputFileDatasetConfig("o", destination="lake/out")


def test_changed_file_not_in_the_cache_fails_the_submit(env: Env) -> None:
    drift, folder = local_store(env, "drift", {"a.txt": "original a bytes\n"})
    ds = Dataset.File.from_files((drift, "a.txt")).register(env.ws, "drift_a")
    recorded = ds.files[0].sha256
    (folder / "a.txt").write_text("changed! a bytes\n")  # same size, other bytes
    assert not blob(env, recorded).exists()
    with NothingStored(env), pytest.raises(DatasetChanged, match="drift:a.txt") as info:
        submit(env, "probe.py", ["--a", ds.as_named_input("a").as_mount()], exp="bad")
    assert info.value.details["changed"] == ["drift:a.txt"]
    # nothing of the changed bytes went into the cache
    assert not blob(env, recorded).exists()
    assert not blob(env, sha_file(folder / "a.txt")).exists()


def test_changed_file_already_in_the_cache_reads_the_registered_bytes(env: Env) -> None:
    drift, folder = local_store(env, "drift2", {"b.txt": "original b bytes\n"})
    ds = Dataset.File.from_files((drift, "b.txt")).register(env.ws, "drift_b")
    first = submit(env, "probe.py", ["--b", ds.as_named_input("b").as_mount()])
    first.wait_for_completion()
    assert probe(env, first)["inputs"]["b"]["files"] == {"b.txt": "original b bytes\n"}
    (folder / "b.txt").write_text("changed, and longer, b bytes\n")
    assert ds.data_changed_since_registration() == ["drift2:b.txt"]
    second = submit(env, "probe.py", ["--b", ds.as_named_input("b").as_download()])
    second.wait_for_completion()
    assert probe(env, second)["inputs"]["b"]["files"] == {"b.txt": "original b bytes\n"}


# -- the runner refuses a tampered host cache --------------------------------------------------
def test_runner_refuses_a_cached_blob_of_the_wrong_size(env: Env) -> None:
    store, _ = local_store(env, "tamper", {"t.txt": "tamper test bytes, unique\n"})
    ds = Dataset.File.from_files((store, "t.txt")).register(env.ws, "tamp")
    f = ds.files[0]
    original = {"t.txt": "tamper test bytes, unique\n"}

    def run_with(mode: str) -> Run:
        cfg = ds.as_named_input("tamp_in")
        run = submit(env, "probe.py", ["--t", cfg.as_mount() if mode == "mount"
                                       else cfg.as_download()])
        run.wait_for_completion(raise_on_error=False)
        return run

    first = run_with("mount")
    assert probe(env, first)["inputs"]["tamp_in"]["files"] == original
    cached = blob(env, f.sha256)
    assert cached.is_file() and sha_file(cached) == f.sha256
    cached.chmod(0o644)
    cached.write_bytes(b"short")
    # the submit sees the file there and does not fetch it again: the runner refuses it
    want = f"cached copy of tamper:t.txt has 5 bytes, not the recorded {f.size}"
    for mode in ("download", "mount"):
        run = run_with(mode)
        ran = (env.ws.run_dir(run.id) / "artifacts/outputs/probe.json").exists()
        read = probe(env, run)["inputs"]["tamp_in"]["files"] if ran else None
        assert run.get_status() == "Failed", f"{mode}: the script ran and read {read}"
        message = run.get_details()["error"]["message"]
        assert "'tamp_in'" in message and want in message, message
    assert cached.read_bytes() == b"short"
    # what the message says to do works: remove the cached file and run again
    cached.unlink()
    for mode in ("download", "mount"):
        run = run_with(mode)
        assert run.get_status() == "Completed"
        assert probe(env, run)["inputs"]["tamp_in"]["files"] == original, mode
    assert sha_file(cached) == f.sha256
