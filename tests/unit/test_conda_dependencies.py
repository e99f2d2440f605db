"""``CondaDependencies``: creation, editing, and environment.yml files that round-trip."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from runyard.environments import CondaDependencies
from runyard.errors import InvalidParameter

AZURE_SAMPLE = textwrap.dedent("""\
    # Conda environment specification. The dependencies defined in this file will
    # be automatically provisioned for runs with userManagedDependencies=False.
    name: project_environment
    dependencies:
      # The python interpreter version.
    - python=3.6.2
    - scikit-learn=0.22.1
    - pip:
        # Required packages for AzureML execution, history, and data preparation.
      - --index-url https://pypi.org/simple
      - azureml-defaults
      - tabulate==0.9.0
    channels:
    - conda-forge
    - defaults
    variables:
      MY_FLAG: "1"
""")


def test_create_and_views() -> None:
    cd = CondaDependencies.create(conda_packages=["numpy=1.26", "scikit-learn"],
                                  pip_packages=["six", "tabulate>=0.9"], python_version="3.11",
                                  pip_indexurl="https://example.org/simple")
    assert cd.get_python_version() == "3.11"
    assert cd.conda_packages == ["python=3.11", "numpy=1.26", "scikit-learn", "pip"]
    assert cd.pip_packages == ["six", "tabulate>=0.9"]
    assert cd.pip_options == ["--index-url https://example.org/simple"]
    assert cd.conda_channels == []
    data = yaml.safe_load(cd.serialize_to_string())
    assert list(data) == ["name", "dependencies"]
    assert data["dependencies"][-1] == {"pip": ["--index-url https://example.org/simple",
                                                "six", "tabulate>=0.9"]}


def test_empty_has_no_python_pin_and_no_packages() -> None:
    cd = CondaDependencies()
    assert cd.get_python_version() is None
    assert cd.conda_packages == [] and cd.pip_packages == [] and cd.pip_options == []
    assert CondaDependencies.create().as_dict() == cd.as_dict()


def test_add_replaces_same_name_and_remove() -> None:
    cd = CondaDependencies()
    cd.add_conda_package("numpy")
    cd.add_conda_package("conda-forge::numpy>=1.2")
    assert cd.conda_packages == ["conda-forge::numpy>=1.2"]
    cd.add_pip_package("Tabulate==0.8")
    cd.add_pip_package("tabulate==0.9.0")  # same project, other spelling
    cd.add_pip_package("Typing_Extensions")
    cd.add_pip_package("typing-extensions>=4")
    assert cd.pip_packages == ["tabulate==0.9.0", "typing-extensions>=4"]
    cd.remove_pip_package("TABULATE")
    assert cd.pip_packages == ["typing-extensions>=4"]
    cd.remove_conda_package("numpy=1.0")  # by name
    assert "numpy" not in " ".join(cd.conda_packages)
    cd.remove_pip_package("not-there")  # no error


def test_python_version_handling() -> None:
    cd = CondaDependencies()
    cd.add_conda_package("python=3.10")
    assert cd.get_python_version() == "3.10"
    cd.set_python_version("3.11.7")
    assert cd.conda_packages.count("python=3.11.7") == 1
    assert cd.get_python_version() == "3.11.7"
    cd.set_python_version(">=3.10")
    assert cd.get_python_version() == ">=3.10"
    assert cd.conda_packages[0] == "python>=3.10"
    with pytest.raises(InvalidParameter, match="python cannot be removed"):
        cd.remove_conda_package("python")
    with pytest.raises(InvalidParameter, match="python_version"):
        cd.set_python_version("  ")


def test_pip_options_and_index_url() -> None:
    cd = CondaDependencies()
    cd.add_pip_package("six")
    cd.set_pip_index_url("https://a.example/simple")
    cd.set_pip_index_url("https://b.example/simple")  # replaces
    cd.set_pip_option("--extra-index-url https://c.example/simple")
    cd.set_pip_option("--extra-index-url   https://d.example/simple")  # may repeat
    cd.set_pip_option("--pre")
    cd.set_pip_option("--pre")  # once
    assert cd.pip_options == ["--index-url https://b.example/simple",
                              "--extra-index-url https://c.example/simple",
                              "--extra-index-url https://d.example/simple", "--pre"]
    assert cd.pip_packages == ["six"]
    with pytest.raises(InvalidParameter, match="pip option"):
        cd.add_pip_package("-x")
    with pytest.raises(InvalidParameter, match="not an option"):
        cd.set_pip_option("six")
    cd.set_pip_requirements(["tomli", "tabulate"])
    assert cd.pip_packages == ["tomli", "tabulate"]
    assert len(cd.pip_options) == 4


def test_channels() -> None:
    cd = CondaDependencies()
    cd.add_channel("conda-forge")
    cd.add_channel("defaults")
    cd.add_channel("conda-forge")
    assert cd.conda_channels == ["conda-forge", "defaults"]
    cd.remove_channel("conda-forge")
    cd.remove_channel("defaults")
    assert cd.conda_channels == []
    assert "channels" not in cd.as_dict()


def test_load_azure_sample_and_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "environment.yml"
    src.write_text(AZURE_SAMPLE)
    cd = CondaDependencies(src)
    assert cd.name == "project_environment"
    assert cd.get_python_version() == "3.6.2"
    assert cd.conda_packages == ["python=3.6.2", "scikit-learn=0.22.1"]
    assert cd.pip_packages == ["azureml-defaults", "tabulate==0.9.0"]
    assert cd.pip_options == ["--index-url https://pypi.org/simple"]
    assert cd.conda_channels == ["conda-forge", "defaults"]
    # save -> load gives the same data, key order and entry order included
    out = cd.save(tmp_path / "out" / "env.yml")
    again = CondaDependencies.load(out)
    assert again == cd
    assert list(again.as_dict()) == ["name", "dependencies", "channels", "variables"]
    assert again.serialize_to_string() == cd.serialize_to_string()
    assert yaml.safe_load(out.read_text()) == yaml.safe_load(AZURE_SAMPLE)
    # from_string of the serialized text is the same too
    assert CondaDependencies.from_string(cd.serialize_to_string()) == cd


def test_save_to_file_default_location(tmp_path: Path) -> None:
    cd = CondaDependencies.create(pip_packages=["six"])
    out = cd.save_to_file(tmp_path)
    assert out == tmp_path / ".runyard" / "conda_dependencies.yml"
    assert CondaDependencies(out) == cd
    assert cd.save_to_file(tmp_path, "env/e.yml") == tmp_path / "env" / "e.yml"


@pytest.mark.parametrize(("text", "field"), [
    ("name: x\ndependencies: [six\n", r"not valid YAML \(line"),
    ("name: x\ndependncies:\n- six\n", "dependncies: unknown key"),
    ("dependencies:\n- six\n- conda: [x]\n", r"dependencies\[1\].conda: unknown key"),
    ("dependencies:\n- pip: six\n", r"dependencies\[0\].pip: must be a list"),
    ("dependencies: six\n", "dependencies: must be a list"),
    ("dependencies:\n- 3.6\n", "is a number"),
    ("channels: conda-forge\n", "channels: must be a list"),
    ("- just\n- a list\n", "must be a mapping"),
    ("dependencies:\n- pip: [a]\n- pip: [b]\n", "more than one 'pip:'"),
])
def test_bad_files_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "bad.yml"
    f.write_text(text)
    with pytest.raises(InvalidParameter, match=field) as info:
        CondaDependencies(f)
    assert str(f) in str(info.value)
    with pytest.raises(InvalidParameter, match=field):
        CondaDependencies.from_string(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="does not exist"):
        CondaDependencies(tmp_path / "nope.yml")


def test_bad_arguments() -> None:
    cd = CondaDependencies()
    with pytest.raises(InvalidParameter, match="conda_package"):
        cd.add_conda_package("")
    with pytest.raises(InvalidParameter, match="pip_package"):
        cd.add_pip_package(None)  # type: ignore[arg-type]
