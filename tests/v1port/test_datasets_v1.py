"""Azure ML v1 control-script code for datasets, run unchanged (bar the import prefix) against
a runyard workspace: upload to the default datastore, define, register, read, version."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.compat.azureml.core import Dataset, Datastore, Workspace
from runyard.compat.azureml.data import FileDataset, TabularDataset
from runyard.compat.azureml.data.datapath import DataPath
from runyard.compat.azureml.exceptions import DatasetException, UserErrorException
from runyard.secrets import ENV_CONFIG_HOME

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG_HOME, str(tmp_path / "config"))
    monkeypatch.delenv("RUNYARD_SECRET_KEY", raising=False)


def test_v1_dataset_control_script(tmp_path: Path) -> None:
    ws = Workspace.create(name="v1ws", path=str(tmp_path / "ws"))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"day{i}.csv").write_text("t,v\n" + "".join(f"{i},{j}\n" for j in range(4)))

    # --- as in v1 ---------------------------------------------------------------------------
    datastore = ws.get_default_datastore()
    datastore.upload(src_dir=str(data), target_path="diabetes-data/", overwrite=True,
                     show_progress=True)
    tab_data_set = Dataset.Tabular.from_delimited_files(
        path=(datastore, "diabetes-data/*.csv"))
    tab_data_set = tab_data_set.register(workspace=ws, name="diabetes dataset",
                                         description="diabetes data",
                                         tags={"format": "CSV"}, create_new_version=True)
    file_data_set = Dataset.File.from_files(path=(datastore, "diabetes-data/*.csv"))
    file_data_set = file_data_set.register(workspace=ws, name="diabetes file dataset",
                                           description="diabetes files",
                                           tags={"format": "CSV"}, create_new_version=True)
    print("Datasets:")
    for dataset_name in list(ws.datasets.keys()):
        dataset = Dataset.get_by_name(ws, dataset_name)
        print("\t", dataset.name, "version", dataset.version)
    diabetes_ds = ws.datasets.get("diabetes dataset")
    df = diabetes_ds.to_pandas_dataframe()
    train, test = diabetes_ds.random_split(percentage=0.75, seed=123)
    files = Dataset.get_by_name(ws, "diabetes file dataset").to_path()
    # ----------------------------------------------------------------------------------------

    assert isinstance(tab_data_set, TabularDataset) and isinstance(file_data_set, FileDataset)
    assert sorted(ws.datasets) == ["diabetes dataset", "diabetes file dataset"]
    assert df.shape == (12, 2) and list(df.columns) == ["t", "v"]
    assert len(train.to_pandas_dataframe()) + len(test.to_pandas_dataframe()) == 12
    assert files == ["/day0.csv", "/day1.csv", "/day2.csv"]
    assert tab_data_set.id == "diabetes dataset:1" and tab_data_set.tags == {"format": "CSV"}
    again = Dataset.Tabular.from_delimited_files(
        path=[DataPath(datastore, "diabetes-data/day0.csv")]).register(
        ws, "diabetes dataset", create_new_version=True)
    assert again.version == 2
    assert len(Dataset.get_by_name(ws, "diabetes dataset", version=1)
               .to_pandas_dataframe()) == 12
    with pytest.raises(UserErrorException, match="not registered"):
        Dataset.get_by_name(ws, "missing")
    with pytest.raises(UserErrorException, match="matches no file"):
        Dataset.File.from_files(path=(Datastore.get(ws, "workspaceblobstore"), "nope/*.csv"))
    # the bytes of a registered version changed on the datastore: detected by hash; reading
    # serves the recorded bytes from the workspace cache (they were read above)
    (data / "day1.csv").write_text("t,v\n9,9\n")
    datastore.upload(src_dir=str(data), target_path="diabetes-data/", overwrite=True,
                     show_progress=False)
    reg = Dataset.get_by_name(ws, "diabetes file dataset")
    assert reg.data_changed_since_registration() == ["workspaceblobstore:diabetes-data/day1.csv"]
    assert len(Dataset.get_by_name(ws, "diabetes dataset", version=1)
               .to_pandas_dataframe()) == 12
    # a version whose changed bytes were never cached cannot be read: a v1 DatasetException
    (data / "day0.csv").write_text("t,v\n0,0\n")
    datastore.upload(src_dir=str(data), target_path="new/", show_progress=False)
    fresh = Dataset.File.from_files(path=(datastore, "new/day0.csv")).register(ws, "fresh")
    (data / "day0.csv").write_text("t,v\n1,1\n")
    datastore.upload(src_dir=str(data), target_path="new/", overwrite=True,
                     show_progress=False)
    with pytest.raises(DatasetException, match="new/day0.csv"):
        fresh.download(str(tmp_path / "dl"))
