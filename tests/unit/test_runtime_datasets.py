"""Datasets inside a run: ``Run.get_context().input_datasets`` reads the runner's inputs file.

Real files (CSV, parquet when pyarrow is here) and an inputs file written by hand, read by a
script in a fresh interpreter: this project's Python with ``src`` on its path, and Python 3.8
(the runtime floor) with only the runtime bundle on its path (no pandas there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.dataset import _pick
from runyard.runtime.bundle import write_bundle
from runyard.runtime.context import OfflineRun
from runyard.runtime.datasets import (
    DatasetError,
    DatasetNeedsPackage,
    DatasetValueError,
    InputsFileError,
    load_inputs,
    pick,
    read_tabular,
)
from runyard.runtime.jobwire import ENV_INPUTS_FILE

SRC = Path(runyard.__file__).resolve().parents[1]
PY38 = sorted(Path("/root/.pyenv/versions").glob("3.8*/bin/python"))


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A materialized input folder per input and the inputs file naming them."""
    mat = tmp_path / "inputs"
    a = _write(mat / "train/data/a.csv", "x,y\n" + "".join(f"{i},{i * i}\n" for i in range(5)))
    b = _write(mat / "train/data/b.csv", "x,y\n" + "".join(f"{i},{i * i}\n" for i in range(5, 9)))
    bad = _write(mat / "broken/bad.csv", 'x,y\n1,2\n3,"unterminated\n')
    # as the runner lays them out: relative to the folder the dataset's files share (x/)
    f1 = _write(mat / "files/one.txt", "one")
    f2 = _write(mat / "files/sub/two.txt", "two")
    f3 = _write(mat / "files/three.txt", "three")
    chosen = _write(mat / "chosen/sub/two.txt", "two")
    single = _write(mat / "single/only.txt", "only")
    mounted = mat / "mounted"
    _write(mounted / "m.txt", "m")
    tab = {"format": "delimited", "separator": ",", "header": True, "encoding": "utf8",
           "infer_column_types": True, "include_path": True,
           "set_column_types": {"y": "float"}}
    doc = {"version": 1, "inputs": {
        "train": {"kind": "tabular", "mode": "direct", "path": str(mat / "train"),
                  "dataset": {"id": "train:3", "name": "train", "version": 3},
                  "options": tab, "ops": [["skip", 2]],
                  "files": [["ds:data/a.csv", a, 20], ["ds:data/b.csv", b, 20]]},
        "broken": {"kind": "tabular", "mode": "direct", "path": str(mat / "broken"),
                   "dataset": {"id": None, "name": None, "version": None},
                   "options": {"format": "delimited"}, "ops": [],
                   "files": [["ds:raw/bad.csv", bad, 20]]},
        "files": {"kind": "file", "mode": "direct", "path": str(mat / "files"),
                  "dataset": {"id": "files:1", "name": "files", "version": 1},
                  "options": {}, "ops": [],
                  "files": [["ds:x/one.txt", f1, 3], ["ds:x/sub/two.txt", f2, 3],
                            ["ds:x/three.txt", f3, 5]]},
        # a file input's files are those its steps chose: the steps are not applied again
        "chosen": {"kind": "file", "mode": "direct", "path": str(mat / "chosen"),
                   "dataset": {"id": "files:1", "name": "files", "version": 1},
                   "options": {}, "ops": [["skip", 1], ["take", 1]],
                   "files": [["ds:x/sub/two.txt", chosen, 3]]},
        # one file: the runner's path is the file itself
        "single": {"kind": "file", "mode": "direct", "path": single,
                   "dataset": {"id": None, "name": None, "version": None},
                   "options": {}, "ops": [], "files": [["ds:y/only.txt", single, 4]]},
        "mounted": {"kind": "file", "mode": "mount", "path": str(mounted),
                    "dataset": {"id": "m:1", "name": "m", "version": 1}, "options": {},
                    "ops": [], "files": [["ds:m.txt", str(mounted / "m.txt"), 1]]},
        "downloaded": {"kind": "reference", "mode": "download", "path": str(mounted / "m.txt"),
                       "dataset": {"id": None, "name": None, "version": None},
                       "options": {}, "ops": [], "files": []},
    }}
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def run_script(code: str, inputs_file: Path | None, tmp_path: Path,
               python: str = sys.executable, pythonpath: Path = SRC) -> dict[str, Any]:
    """Run ``code`` as a submitted script would (a live run context) and return the JSON
    object it prints last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update(PYTHONPATH=str(pythonpath), RUNYARD_RUN_ID="run_1",
               RUNYARD_SPOOL_DIR=str(tmp_path / "spool"),
               RUNYARD_ARTIFACTS_DIR=str(tmp_path / "artifacts"))
    if inputs_file is not None:
        env[ENV_INPUTS_FILE] = str(inputs_file)
    proc = subprocess.run([python, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_tabular_direct_input_is_a_dataframe_after_the_steps(inputs: Path,
                                                             tmp_path: Path) -> None:
    out = run_script("""
        import json
        from runyard import Run
        run = Run.get_context()
        train = run.input_datasets["train"]
        df = train.take(4).to_pandas_dataframe()
        a, b = train.random_split(0.5, seed=7)
        split = [sorted(d.to_pandas_dataframe()["x"].tolist()) for d in (a, b)]
        print(json.dumps({"type": type(train).__name__, "id": train.id, "name": train.name,
                          "version": train.version, "rows": df.to_dict("records"),
                          "dtype": str(df["y"].dtype), "all": len(train.to_pandas_dataframe()),
                          "split": split, "again": sorted(a.to_pandas_dataframe()["x"]
                                                          .tolist()),
                          "sample": len(train.take_sample(0.0, seed=1).to_pandas_dataframe()),
                          "repr": repr(train.skip(1))}))
    """, inputs, tmp_path)
    assert out["type"] == "InputTabularDataset"
    assert (out["id"], out["name"], out["version"]) == ("train:3", "train", 3)
    # 9 rows over two files; the recorded skip(2), then take(4): x = 2..5, across both files
    assert out["rows"] == [{"Path": "/data/a.csv", "x": 2, "y": 4.0},
                           {"Path": "/data/a.csv", "x": 3, "y": 9.0},
                           {"Path": "/data/a.csv", "x": 4, "y": 16.0},
                           {"Path": "/data/b.csv", "x": 5, "y": 25.0}]
    assert out["dtype"] == "float64"
    assert out["all"] == 7
    first, rest = out["split"]
    assert sorted(first + rest) == list(range(2, 9)) and not set(first) & set(rest)
    assert out["again"] == first  # the seed makes it reproducible
    assert out["sample"] == 0
    assert "ops=[['skip', 2], ['skip', 1]]" in out["repr"]


def test_a_csv_that_does_not_parse_names_the_file(inputs: Path, tmp_path: Path) -> None:
    out = run_script("""
        import json
        from runyard import Run
        try:
            Run.get_context().input_datasets["broken"].to_pandas_dataframe()
        except ValueError as e:
            print(json.dumps({"type": type(e).__name__, "message": str(e)}))
    """, inputs, tmp_path)
    assert out["type"] == "DatasetValueError"
    assert out["message"].startswith("path: ds:raw/bad.csv does not parse as delimited text")


def test_file_direct_input_paths_download_and_mount(inputs: Path, tmp_path: Path) -> None:
    out = run_script("""
        import json, os
        from runyard import Run
        files = Run.get_context().input_datasets["files"]
        got = {"to_path": files.to_path(), "skip": files.skip(1).to_path()}
        dl = files.take(2).download(os.path.abspath("dl"))
        got["download"] = [os.path.relpath(p, "dl") for p in dl]
        got["text"] = open(dl[1]).read()
        os.makedirs("dl2", exist_ok=True)
        open("dl2/one.txt", "w").write("other")
        try:
            files.take(1).download("dl2")
        except ValueError as e:
            got["clash"] = str(e)
        files.take(1).download("dl2", overwrite=True)
        got["overwritten"] = open("dl2/one.txt").read()
        with files.mount() as m:
            got["mount_all"] = m.mount_point
        with files.skip(2).mount() as m:
            point = m.mount_point
            got["mount_some"] = sorted(os.listdir(point))
            got["mount_text"] = open(os.path.join(point, "three.txt")).read()
        got["gone"] = not os.path.exists(point)
        with files.take(1).mount("mnt") as m:
            got["given"] = os.listdir("mnt")
        got["given_after"] = os.listdir("mnt")
        chosen = Run.get_context().input_datasets["chosen"]
        got["chosen"] = [chosen.to_path(), chosen.take(5).to_path(), chosen.skip(1).to_path()]
        single = Run.get_context().input_datasets["single"]
        with single.mount() as m:
            got["single"] = [single.to_path(), os.listdir(m.mount_point)]
        print(json.dumps(got))
    """, inputs, tmp_path)
    assert out["to_path"] == ["/one.txt", "/sub/two.txt", "/three.txt"]
    assert out["skip"] == ["/sub/two.txt", "/three.txt"]
    assert out["download"] == ["one.txt", "sub/two.txt"] and out["text"] == "two"
    assert out["clash"].startswith("overwrite: 1 file(s) already exist with other content")
    assert out["overwritten"] == "one"
    assert out["mount_all"] == str(tmp_path / "inputs/files")
    assert out["mount_some"] == ["three.txt"] and out["mount_text"] == "three"
    assert out["gone"] is True
    assert (out["given"], out["given_after"]) == (["one.txt"], [])
    assert out["chosen"] == [["/sub/two.txt"], ["/sub/two.txt"], []]
    assert out["single"] == [["/only.txt"], ["only.txt"]]


def test_mount_and_download_inputs_are_paths_and_no_inputs_is_empty(
        inputs: Path, tmp_path: Path) -> None:
    code = """
        import json
        from runyard import Run
        from runyard.compat.azureml.core import Run as V1Run
        got = Run.get_context().input_datasets
        print(json.dumps({"got": {k: v for k, v in got.items() if isinstance(v, str)},
                          "same": V1Run.get_context().input_datasets.keys() == got.keys()}))
    """
    out = run_script(code, inputs, tmp_path)
    assert out["got"] == {"mounted": str(tmp_path / "inputs/mounted"),
                          "downloaded": str(tmp_path / "inputs/mounted/m.txt")}
    assert out["same"] is True
    assert run_script(code, None, tmp_path)["got"] == {}
    assert OfflineRun().input_datasets == {}


def _doc(inputs: Path) -> dict[str, Any]:
    return dict(json.loads(inputs.read_text(encoding="utf-8")))


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(version=2), "expected an object with version 1, got 2"),
    (lambda d: d.update(inputs=[1]), "'inputs' must be an object"),
    (lambda d: d["inputs"].update(train=[]), "input 'train': expected an object"),
    (lambda d: d["inputs"]["train"].pop("kind"), "input 'train': kind must be one of"),
    (lambda d: d["inputs"]["mounted"].update(mode="fuse"), "input 'mounted': mode must be"),
    (lambda d: d["inputs"]["mounted"].update(path="rel/x"), "path must be an absolute path"),
    (lambda d: d["inputs"]["train"].update(files=[["ds:a.csv", "/a.csv"]]),
     "input 'train': files[0] must be"),
    (lambda d: d["inputs"]["train"].update(files={}), "files must be a list"),
    (lambda d: d["inputs"]["train"].pop("files"), "files must be a list"),
    (lambda d: d["inputs"]["train"].update(ops=[["take", -1]]),
     "ops[0] count: must be an integer >= 0"),
    (lambda d: d["inputs"]["train"].update(ops=[["drop", 1]]), "unknown step 'drop'"),
    (lambda d: d["inputs"]["train"].update(ops=[["split", 0.5, 1, 2]]), "part must be 0 or 1"),
    (lambda d: d["inputs"]["train"].update(ops=[["sample", 2.0, 1]]), "between 0 and 1"),
    (lambda d: d["inputs"]["train"].update(ops="take"), "must be a list of steps"),
    (lambda d: d["inputs"]["files"]["dataset"].update(version="1"),
     "dataset.version must be a int or null"),
    (lambda d: d["inputs"]["train"]["options"].update(separator=1),
     "options.separator must be a str"),
    (lambda d: d["inputs"]["train"]["options"].update(set_column_types={"y": "complex"}),
     "options.set_column_types must map"),
])
def test_a_tampered_inputs_file_names_the_input_and_the_field(
        inputs: Path, change: Any, expected: str) -> None:
    doc = _doc(inputs)
    change(doc)
    inputs.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputsFileError) as info:
        load_inputs(inputs)
    assert expected in str(info.value)
    assert str(inputs) in str(info.value)


def test_an_inputs_file_that_is_not_json_or_gone(inputs: Path, tmp_path: Path) -> None:
    inputs.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputsFileError, match="cannot be read as JSON"):
        load_inputs(inputs)
    with pytest.raises(InputsFileError, match="cannot be read as JSON"):
        load_inputs(tmp_path / "missing.json")


def test_a_local_file_removed_after_the_runner_wrote_it(inputs: Path) -> None:
    train = load_inputs(inputs)["train"]
    (inputs.parent / "inputs/train/data/b.csv").unlink()
    with pytest.raises(DatasetError, match=r"input 'train': 1 file\(s\) are not where"):
        train.to_pandas_dataframe()


def test_the_sdk_and_the_runtime_share_pick_and_read(tmp_path: Path) -> None:
    ops: list[list[Any]] = [["skip", 3], ["split", 0.4, 11, 1], ["sample", 0.7, 5], ["take", 40]]
    assert _pick(200, ops) == pick(200, ops)
    assert len(pick(200, ops)) == 40 and pick(200, ops) == sorted(set(pick(200, ops)))
    import pandas as pd  # noqa: PLC0415

    f = _write(tmp_path / "t.tsv", "1\tx\n2\ty\n")
    df = read_tabular(pd, [("ds:t.tsv", f)], {"separator": "\t", "header": False,
                                               "infer_column_types": False})
    assert df.to_dict("list") == {"Column1": ["1", "2"], "Column2": ["x", "y"]}
    with pytest.raises(DatasetValueError, match="ds:t.tsv has no column 'z'") as info:
        read_tabular(pd, [("ds:t.tsv", f)], {"set_column_types": {"z": "int"}})
    assert info.value.field == "set_column_types"
    try:
        import pyarrow  # type: ignore[import-not-found]  # noqa: F401, PLC0415
    except ImportError:
        with pytest.raises(DatasetNeedsPackage, match=r"reading parquet \(ds:p.parquet\) needs "
                           "pyarrow: pip install pyarrow"):
            read_tabular(pd, [("ds:p.parquet", f)], {"format": "parquet"})
    else:
        pq = tmp_path / "p.parquet"
        pd.DataFrame({"a": [1, 2, 3]}).to_parquet(pq)
        got = read_tabular(pd, [("ds:p.parquet", pq)], {"format": "parquet"}, [["skip", 1]])
        assert got["a"].tolist() == [2, 3]


@pytest.mark.skipif(not PY38, reason="no Python 3.8 under /root/.pyenv on this machine")
def test_the_runtime_bundle_on_python_38(inputs: Path, tmp_path: Path) -> None:
    """The floor: paths, errors and the 'needs pandas' text, with only the bundle on the path
    (pandas is not installed for that Python)."""
    lib = write_bundle(tmp_path / "lib")
    code = """
        import json, sys
        from runyard import Run
        got = {"python": list(sys.version_info[:2])}
        inputs = Run.get_context().input_datasets
        got["mounted"] = inputs["mounted"]
        got["to_path"] = inputs["files"].take(2).to_path()
        try:
            inputs["train"].to_pandas_dataframe()
        except Exception as e:
            got["pandas"] = [type(e).__name__, str(e)]
        print(json.dumps(got))
    """
    out = run_script(code, inputs, tmp_path, python=str(PY38[-1]), pythonpath=lib)
    assert out["python"] == [3, 8]
    assert out["mounted"] == str(tmp_path / "inputs/mounted")
    assert out["to_path"] == ["/one.txt", "/sub/two.txt"]
    assert out["pandas"] == ["DatasetNeedsPackage",
                             "to_pandas_dataframe needs pandas: pip install pandas"]
    doc = _doc(inputs)
    doc["inputs"]["train"]["ops"] = [["take", "3"]]
    inputs.write_text(json.dumps(doc), encoding="utf-8")
    out = run_script("""
        import json
        from runyard import Run
        from runyard.runtime.datasets import DatasetError
        try:
            Run.get_context().input_datasets
        except DatasetError as e:
            print(json.dumps({"error": str(e)}))
    """, inputs, tmp_path, python=str(PY38[-1]), pythonpath=lib)
    assert "input 'train': ops[0] count: must be an integer >= 0, got '3'" in out["error"]


def test_what_the_runner_lays_out_reads_back(tmp_path: Path) -> None:
    """The runner's own inputs file (runyard.runtime.bindings.prepare over a host cache) is
    what load_inputs reads: rows after the steps, file names relative to the shared folder."""
    import hashlib  # noqa: PLC0415

    from runyard.runtime import bindings  # noqa: PLC0415

    cache = tmp_path / "cache"

    def blob(text: str, where: str, rel: str) -> list[Any]:
        data = text.encode()
        sha = hashlib.sha256(data).hexdigest()
        _write(Path(bindings.blob_path(str(cache / "{sha2}/{rest}"), sha)), text)
        return [rel, sha, len(data), where]

    csv = [blob("x\n1\n2\n", "ds:t/a.csv", "a.csv"), blob("x\n3\n4\n", "ds:t/b.csv", "b.csv")]
    job = {"input_blobs": str(cache / "{sha2}/{rest}"), "inputs": [
        {"name": "train", "token": "DatasetConsumptionConfig:train", "kind": "tabular",
         "mode": "direct", "dataset": {"id": "t:1", "name": "t", "version": 1},
         "options": {"format": "delimited"}, "ops": [["skip", 1], ["take", 2]], "files": csv},
        {"name": "docs", "token": "DatasetConsumptionConfig:docs", "kind": "file",
         "mode": "direct", "dataset": {"id": "d:2", "name": "d", "version": 2}, "options": {},
         "ops": [["skip", 1]], "files": [blob("b", "ds:d/b.txt", "b.txt"),
                                          blob("c", "ds:d/sub/c.txt", "sub/c.txt")]},
        {"name": "m", "token": "DatasetConsumptionConfig:m", "kind": "file", "mode": "mount",
         "dataset": {}, "options": {}, "ops": [], "files": [blob("m", "ds:m.txt", "m.txt")]},
    ]}
    workdir = tmp_path / "run" / "wd"
    workdir.mkdir(parents=True)
    prepared = bindings.prepare(job, workdir)
    got = load_inputs(prepared.env[ENV_INPUTS_FILE])
    assert got["train"].to_pandas_dataframe()["x"].tolist() == [2, 3]
    assert got["docs"].to_path() == ["/b.txt", "/sub/c.txt"] and got["docs"].id == "d:2"
    assert got["docs"].skip(1).download(tmp_path / "dl") == [str(tmp_path / "dl/sub/c.txt")]
    assert Path(got["m"]).read_text() == "m"


def test_a_direct_input_of_one_chosen_file_keeps_its_place(tmp_path: Path) -> None:
    import hashlib  # noqa: PLC0415

    from runyard.runtime import bindings  # noqa: PLC0415

    data = b"b"
    sha = hashlib.sha256(data).hexdigest()
    template = str(tmp_path / "cache/{sha}")
    Path(bindings.blob_path(template, sha)).parent.mkdir(parents=True)
    Path(bindings.blob_path(template, sha)).write_bytes(data)
    job = {"input_blobs": template, "inputs": [
        {"name": "docs", "token": "DatasetConsumptionConfig:docs", "kind": "file",
         "mode": "direct", "dataset": {}, "options": {}, "ops": [["take", 1]],
         "files": [["sub/b.txt", sha, 1, "ds:d/sub/b.txt"]]}]}
    (tmp_path / "run/wd").mkdir(parents=True)
    prepared = bindings.prepare(job, tmp_path / "run/wd")
    assert load_inputs(prepared.env[ENV_INPUTS_FILE])["docs"].to_path() == ["/sub/b.txt"]
