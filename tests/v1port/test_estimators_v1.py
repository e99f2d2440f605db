"""Azure ML v1's estimators (issue 13, item 4): ``Estimator``, ``SKLearn``, ``PyTorch``,
``TensorFlow``, ``Chainer`` translated into a ScriptRunConfig, and one real run of a v1
control script that submits an ``SKLearn`` estimator to the local target.

The control code uses ``runyard.compat.azureml`` imports only.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.compat.azureml.core import Environment, Experiment, Workspace
from runyard.compat.azureml.train.dnn import (
    Chainer,
    Gloo,
    Mpi,
    Nccl,
    ParameterServer,
    PyTorch,
    TensorFlow,
)
from runyard.compat.azureml.train.estimator import Estimator
from runyard.compat.azureml.train.sklearn import SKLearn
from runyard.environments import frameworks
from runyard.errors import InvalidParameter, NotSupported
from runyard.runconfig import ScriptRunConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "estimators.md"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config-home"))
    w = Workspace.create("v1-estimators", path=tmp_path / "ws")
    yield w
    w.close()


def pip_of(est: Estimator) -> list[str]:
    cd = est._script_run_config().effective_run_config().environment.python.conda_dependencies
    return list(cd.pip_packages) if cd is not None else []


# -- script_params -> arguments ---------------------------------------------------------------
def test_script_params_flatten_in_dict_order_with_flags() -> None:
    est = Estimator(".", entry_script="train.py",
                    script_params={"--kernel": "linear", "--penalty": 0.9, "--verbose": "",
                                   "--epochs": 3, "--dry-run": None, "positional": "x"})
    cfg = est._script_run_config()
    assert isinstance(cfg, ScriptRunConfig)
    assert cfg.script == "train.py" and cfg.source_directory == "."
    assert cfg.arguments == ["--kernel", "linear", "--penalty", 0.9, "--verbose", "--epochs", 3,
                             "--dry-run", "positional", "x"]
    rc = cfg.effective_run_config()
    assert rc.to_dict()["arguments"] == ["--kernel", "linear", "--penalty", "0.9", "--verbose",
                                         "--epochs", "3", "--dry-run", "positional", "x"]
    # each call is a fresh copy: a sweep appending its hyperparameters changes only its own
    cfg.arguments.append("--lr")
    assert est._script_run_config().arguments == cfg.arguments[:-1]
    # no environment, no docker: the run uses runyard's own interpreter as any plain config
    assert rc.environment.python.conda_dependencies is None and not rc.environment.docker.enabled


def test_data_inputs_stay_objects_and_inputs_must_be_arguments(ws: Workspace,
                                                                tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a\n1\n")
    ref = ws.get_default_datastore().upload_files(files=[str(tmp_path / "d.csv")],
                                                  target_path="data", show_progress=False)
    data = ref.as_download()
    est = SKLearn(".", entry_script="t.py", script_params={"--data": data}, inputs=[data])
    args = est._script_run_config().arguments
    assert args is not None and args[0] == "--data" and args[1] is data
    # the same input made twice (v1 code often did): matched by its name
    SKLearn(".", entry_script="t.py", script_params={"--data": data}, inputs=[ref.as_mount()])
    other = ws.get_default_datastore().path("data").as_mount()
    with pytest.raises(NotSupported, match="not a value of script_params"):
        SKLearn(".", entry_script="t.py", script_params={"--data": data}, inputs=[other])
    with pytest.raises(InvalidParameter, match=r"inputs\[0\]"):
        SKLearn(".", entry_script="t.py", inputs=["not-an-input"])


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"script_params": ["--lr", "0.1"]}, "script_params"),
    ({"script_params": {"--layers": [1, 2]}}, "script_params['--layers']"),
    ({"script_params": {"": 1}}, "script_params[''"),
    ({"script_params": {"--x": b"raw"}}, "script_params['--x']"),
    ({"entry_script": None}, "entry_script"),
    ({"node_count": 0}, "node_count"),
    ({"process_count_per_node": "2"}, "process_count_per_node"),
    ({"use_gpu": "yes"}, "use_gpu"),
    ({"pip_packages": "numpy"}, "pip_packages"),
    ({"pip_packages": ["numpy", "-e ."]}, "pip_packages[1]"),
    ({"conda_packages": ["--bad"]}, "conda_packages[0]"),
    ({"environment_variables": ["A=1"]}, "environment_variables"),
    ({"environment_definition": "AzureML-Minimal"}, "environment_definition"),
    ({"compute_target": 3}, "compute_target"),
    ({"compute_target": "local", "vm_size": "STANDARD_D2_V2"}, "vm_size"),
    ({"vm_size": "NO_SUCH_SIZE"}, "vm_size"),
    ({"max_run_duration_seconds": -1}, "max_run_duration_seconds"),
    ({"distributed_training": "mpi"}, "distributed_training"),
    ({"distributed_backend": "horovod"}, "distributed_backend"),
    ({"distributed_backend": "mpi", "distributed_training": Mpi()}, "distributed_backend"),
    ({"distributed_training": Gloo()}, "distributed_training"),
    ({"process_count_per_node": 2, "distributed_training": Mpi(4)}, "process_count_per_node"),
    ({"user_managed": True, "pip_packages": ["numpy"]}, "pip_packages"),
    ({"use_docker": False, "custom_docker_base_image": "python:3.11-slim"}, "use_docker"),
    ({"conda_dependencies_file": "missing.yml"}, "conda_dependencies_file"),
    ({"pip_requirements_file": "a.txt", "pip_requirements_file_path": "b.txt"},
     "pip_requirements_file_path"),
    ({"shm_size": 2}, "shm_size"),
    ({"no_such_arg": 1}, "no_such_arg"),
])
def test_bad_arguments_are_named(kwargs: dict[str, object], field: str) -> None:
    kwargs.setdefault("entry_script", "train.py")
    with pytest.raises(InvalidParameter) as info:
        Estimator(".", **kwargs)  # type: ignore[arg-type]
    assert field in str(info.value), str(info.value)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"image_registry_details": object()}, "docker login"),
    ({"resume_from": "ckpt"}, "script_params"),
    ({"distributed_training": ParameterServer(2, 1)}, "Mpi()"),
    ({"distributed_backend": "ps"}, "parameter-server"),
])
def test_azure_only_settings_that_would_change_the_run_are_refused(
        kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(NotSupported, match=words.replace("(", r"\(").replace(")", r"\)")):
        TensorFlow(".", entry_script="train.py", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotSupported, match="parameter-server"):
        TensorFlow(".", entry_script="train.py", worker_count=2)


def test_azure_only_settings_without_effect_are_accepted() -> None:
    est = Estimator(".", entry_script="train.py", vm_priority="lowpriority",
                    source_directory_data_store="workspacefilestore", shm_size="4g",
                    _enable_optimized_mode=False, _disable_validation=True)
    rc = est._script_run_config().effective_run_config()
    assert rc.target == "local" and not rc.environment.docker.enabled


# -- framework versions -----------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "version", "pins"), [
    (SKLearn, None, ["scikit-learn==1.9.1", "numpy==2.4.6", "scipy==1.17.1", "joblib==1.5.3"]),
    (SKLearn, "0.22", ["scikit-learn==0.22.2.post1", "numpy<1.24"]),
    (SKLearn, "1.3.2", ["scikit-learn==1.3.2", "numpy<2"]),
    (PyTorch, "1.6", ["torch==1.6.0", "numpy<2"]),
    (PyTorch, None, ["torch==2.15.0", "numpy==2.4.6"]),
    (TensorFlow, "2.2", ["tensorflow-cpu==2.2.3"]),
    (TensorFlow, None, ["tensorflow-cpu==2.21.0"]),
    (Chainer, None, ["chainer==7.8.1", "numpy<1.24"]),
])
def test_framework_version_pins(cls: type[Estimator], version: str | None,
                                pins: list[str]) -> None:
    est = cls(".", entry_script="train.py", framework_version=version)  # type: ignore[call-arg]
    assert pip_of(est) == pins
    key = est.framework_version
    assert key in frameworks.available_versions(cls.__name__)
    assert est._script_run_config().effective_run_config().environment.name == \
        f"estimator-{cls.__name__.lower()}-{key}"


def test_use_gpu_selects_the_gpu_pins_where_they_differ() -> None:
    assert pip_of(TensorFlow(".", entry_script="t.py", framework_version="2.13",
                             use_gpu=True)) == ["tensorflow==2.13.1"]
    assert pip_of(TensorFlow(".", entry_script="t.py", use_gpu=True)) == [
        "tensorflow[and-cuda]==2.21.0"]
    # PyPI's Linux torch wheels carry CUDA: the same pins
    assert pip_of(PyTorch(".", entry_script="t.py", framework_version="2.4", use_gpu=True)) \
        == ["torch==2.4.1"]
    with pytest.raises(NotSupported, match="cupy"):
        Chainer(".", entry_script="t.py", use_gpu=True)
    assert pip_of(Chainer(".", entry_script="t.py", use_gpu=True,
                          pip_packages=["cupy-cuda102==7.8.0"]))[-1] == "cupy-cuda102==7.8.0"


@pytest.mark.parametrize(("cls", "old"), [(SKLearn, "0.20.3"), (PyTorch, "1.0"),
                                          (TensorFlow, "1.13"), (Chainer, "5.1.0")])
def test_a_version_without_wheels_for_python_3_8_is_refused_naming_the_available(
        cls: type[Estimator], old: str) -> None:
    with pytest.raises(NotSupported) as info:
        cls(".", entry_script="train.py", framework_version=old)  # type: ignore[call-arg]
    msg = str(info.value)
    assert old in msg and "Python 3.7" in msg
    available = frameworks.available_versions(cls.__name__)
    assert ", ".join(available) in msg and f"default {available[-1]}" in msg
    # an unknown version: InvalidParameter, the same list
    with pytest.raises(InvalidParameter, match="framework_version") as info2:
        cls(".", entry_script="train.py", framework_version="99.1")  # type: ignore[call-arg]
    assert ", ".join(available) in str(info2.value)


def test_user_packages_and_files_join_the_pins(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text(textwrap.dedent("""\
        name: mine
        channels: [conda-forge]
        dependencies:
          - python=3.11
          - pip
          - pip:
            - requests==2.32.3
        """))
    (tmp_path / "req.txt").write_text("--extra-index-url https://pkgs.example.org/simple\n"
                                      "pandas==3.1.1\n")
    est = SKLearn(str(tmp_path), entry_script="t.py", framework_version="1.2",
                  conda_dependencies_file="env.yml", pip_requirements_file="req.txt",
                  conda_packages=["nomkl"], pip_packages=["numpy==1.26.4", "tqdm"])
    cd = est.conda_dependencies
    assert cd is not None and cd.get_python_version() == "3.11"
    # a user's package replaces the same-named pin; the others keep their order
    assert list(cd.pip_packages) == ["requests==2.32.3", "scikit-learn==1.2.2", "numpy==1.26.4",
                                     "pandas==3.1.1", "tqdm"]
    assert list(cd.pip_options) == ["--extra-index-url https://pkgs.example.org/simple"]
    assert "nomkl" in list(cd.conda_packages)


def test_environment_definition_wins_and_clashes_are_named() -> None:
    env = Environment("mine")
    env.python.user_managed_dependencies = True
    env.environment_variables["A"] = "1"
    est = PyTorch(".", entry_script="t.py", environment_definition=env,
                  environment_variables={"B": "2"})
    used = est._script_run_config().effective_run_config().environment
    assert used.name == "mine" and used.python.user_managed_dependencies
    assert used.python.conda_dependencies is None  # no framework pins added
    assert used.environment_variables == {"A": "1", "B": "2"}
    assert env.environment_variables == {"A": "1"}  # the caller's object is not changed
    assert est.framework_version is None
    for clash in ({"pip_packages": ["numpy"]}, {"framework_version": "2.4"},
                  {"custom_docker_base_image": "python:3.11-slim"}, {"user_managed": True}):
        with pytest.raises(InvalidParameter, match=next(iter(clash))):
            PyTorch(".", entry_script="t.py", environment_definition=env,
                    **clash)  # type: ignore[arg-type]


def test_user_managed_and_docker() -> None:
    est = SKLearn(".", entry_script="t.py", user_managed=True, framework_version="1.4")
    env = est._script_run_config().effective_run_config().environment
    assert env.python.user_managed_dependencies and env.python.conda_dependencies is None
    with pytest.raises(NotSupported):  # the version is still checked
        SKLearn(".", entry_script="t.py", user_managed=True, framework_version="0.20.3")
    est = PyTorch(".", entry_script="t.py", custom_docker_base_image="python:3.11-slim",
                  use_gpu=True, shm_size="8g")
    docker = est._script_run_config().effective_run_config().environment.docker
    assert docker.enabled and docker.base_image == "python:3.11-slim"
    assert docker.gpu_support and docker.shm_size == "8g"
    with pytest.warns(DeprecationWarning, match="custom_docker_base_image"):
        old = Estimator(".", entry_script="t.py", custom_docker_image="python:3.11-slim")
    assert old.run_config.environment.docker.base_image == "python:3.11-slim"


# -- target and distribution ------------------------------------------------------------------
def test_vm_size_without_target_makes_a_cluster_for_the_run() -> None:
    est = PyTorch(".", entry_script="t.py", vm_size="STANDARD_D2_V2", vm_priority="lowpriority",
                  node_count=2, distributed_training=Mpi(process_count_per_node=2))
    rc = est._script_run_config().effective_run_config()
    assert rc.target == "amlcompute"
    assert rc.amlcompute.vm_size == "STANDARD_D2_V2"
    assert rc.amlcompute.vm_priority == "lowpriority"
    assert rc.amlcompute._cluster_max_node_count == 2
    assert rc.node_count == 2 and rc.mpi.process_count_per_node == 2
    assert rc.mpi.node_count == 2 and rc.communicator == "OpenMpi" and rc.framework == "PyTorch"
    named = Estimator(".", entry_script="t.py", compute_target="cpu-cluster")
    assert named._script_run_config().effective_run_config().target == "cpu-cluster"


@pytest.mark.parametrize(("choice", "communicator"), [(Gloo(), "Gloo"), (Nccl(), "Nccl")])
def test_pytorch_gloo_and_nccl(choice: object, communicator: str) -> None:
    est = PyTorch(".", entry_script="t.py", compute_target="gpu-cluster", node_count=3,
                  process_count_per_node=2, distributed_training=choice)
    rc = est._script_run_config().effective_run_config()
    assert rc.communicator == communicator and rc.framework == "PyTorch"
    assert rc.node_count == 3 and rc.mpi.process_count_per_node == 2


def test_more_than_one_process_is_mpi_and_sklearn_is_single_process() -> None:
    rc = TensorFlow(".", entry_script="t.py", node_count=2)._script_run_config() \
        .effective_run_config()
    assert rc.communicator == "OpenMpi" and rc.node_count == 2 and rc.framework == "TensorFlow"
    rc = Chainer(".", entry_script="t.py", distributed_backend="mpi",
                 process_count_per_node=4)._script_run_config().effective_run_config()
    assert rc.mpi.process_count_per_node == 4 and rc.node_count == 1
    assert Estimator(".", entry_script="t.py")._script_run_config().effective_run_config() \
        .communicator == "None"
    with pytest.raises(InvalidParameter, match="node_count"):
        SKLearn(".", entry_script="t.py", node_count=2)


def test_max_run_duration_and_environment_variables() -> None:
    est = Estimator(".", entry_script="t.py", max_run_duration_seconds=600,
                    environment_variables={"MODE": "fast", "N": 3})  # type: ignore[dict-item]
    rc = est._script_run_config().effective_run_config()
    assert rc.max_run_duration_seconds == 600
    assert rc.environment.environment_variables == {"MODE": "fast", "N": "3"}


# -- the table, once ---------------------------------------------------------------------------
def test_the_table_is_the_same_in_code_docstring_and_docs() -> None:
    table = frameworks.markdown_table()
    assert frameworks.__doc__ is not None and table in frameworks.__doc__
    assert table in DOCS.read_text()
    for framework, rows in frameworks.FRAMEWORKS.items():
        assert frameworks.default_version(framework) == list(rows)[-1]
        for key, row in rows.items():
            assert row.version.startswith(key)
            assert frameworks.framework_pins(framework, row.version)[0] == key


# -- a real run ---------------------------------------------------------------------------------
TRAIN = '''\
"""A v1 training script (unchanged): argparse over script_params, sklearn, Run.log."""
import argparse
import os
import sys

try:
    from azureml.core import Run
except ImportError:
    from runyard.compat.azureml.core import Run
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--data-folder", dest="data")
parser.add_argument("--regularization", type=float)
parser.add_argument("--verbose", action="store_true")
args = parser.parse_args()

rows = []
for name in sorted(os.listdir(args.data)):
    with open(os.path.join(args.data, name)) as fh:
        rows += [line.strip().split(",") for line in fh.readlines()[1:]]
X = [[float(a)] for a, _ in rows]
y = [int(b) for _, b in rows]
model = LogisticRegression(C=1.0 / args.regularization).fit(X, y)
run = Run.get_context()
run.log("regularization", args.regularization)
run.log("accuracy", float(model.score(X, y)))
run.log("verbose", int(args.verbose))
run.log("argv", " ".join(a for a in sys.argv[1:] if not a.startswith("/")))
run.log("mode", os.environ["TRAINING_MODE"])
'''


def test_a_v1_control_script_submits_an_sklearn_estimator(ws: Workspace,
                                                          tmp_path: Path) -> None:
    src = tmp_path / "training"
    src.mkdir()
    (src / "train.py").write_text(TRAIN)
    data = tmp_path / "data"
    data.mkdir()
    for part, xs in (("a", range(0, 6)), ("b", range(6, 11))):  # two files: a folder
        (data / f"points_{part}.csv").write_text("x,y\n" + "".join(
            f"{x},{int(x > 5)}\n" for x in xs))

    # -- as written in v1 (bar the import prefix) --
    ds = ws.get_default_datastore()
    ds.upload(src_dir=str(data), target_path="points", overwrite=True, show_progress=False)
    env = Environment("sklearn-here")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = sys.executable  # an interpreter with scikit-learn
    est = SKLearn(source_directory=str(src), entry_script="train.py",
                  script_params={"--data-folder": ds.path("points").as_download(),
                                 "--regularization": 0.5, "--verbose": ""},
                  compute_target="local", environment_definition=env,
                  environment_variables={"TRAINING_MODE": "estimator"})
    run = Experiment(ws, "sklearn-estimator").submit(est)
    run.wait_for_completion(timeout=180)

    assert run.get_status() == "Completed"
    metrics = run.get_metrics()
    assert metrics["regularization"] == 0.5 and metrics["verbose"] == 1
    assert metrics["accuracy"] == 1.0 and metrics["mode"] == "estimator"
    assert metrics["argv"] == "--data-folder --regularization 0.5 --verbose"
    arguments = run.get_details()["runDefinition"]["arguments"]
    assert arguments[0] == "--data-folder" and arguments[2:] == ["--regularization", "0.5",
                                                                  "--verbose"]
