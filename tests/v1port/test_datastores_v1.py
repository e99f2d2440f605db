"""Azure ML v1 control-script code for datastores, run unchanged (bar the import prefix and
the emulator endpoint) against a runyard workspace and a real Azurite."""

from __future__ import annotations

from pathlib import Path

import pytest

from datastores_support import ACCOUNT, KEY, Azurite
from runyard.compat.azureml.core import Datastore, Workspace
from runyard.compat.azureml.exceptions import UserErrorException
from runyard.secrets import ENV_CONFIG_HOME

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG_HOME, str(tmp_path / "config"))
    monkeypatch.delenv("RUNYARD_SECRET_KEY", raising=False)


def test_v1_datastore_control_script(tmp_path: Path, azurite: Azurite) -> None:
    ws = Workspace.create(name="v1ws", path=str(tmp_path / "ws"))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"day{i}.csv").write_text(f"t,v\n{i},{i * 2}\n")

    # -- as written in v1 (endpoint: Azurite instead of core.windows.net) --
    blob_ds = Datastore.register_azure_blob_container(
        workspace=ws, datastore_name="training_blobs", container_name="training-data",
        account_name=ACCOUNT, account_key=KEY, endpoint=azurite.url,
        create_if_not_exists=True)
    blob_ds.upload(src_dir=str(data), target_path="weather", overwrite=True,
                   show_progress=True)
    ds = Datastore.get(ws, datastore_name="training_blobs")
    assert ds.name == "training_blobs" and ds.datastore_type == "AzureBlob"
    assert ds.container_name == "training-data" and ds.account_name == ACCOUNT
    assert ds.download(target_path=str(tmp_path / "dl"), prefix="weather",
                       show_progress=False) == 3
    default = ws.get_default_datastore()
    assert default.name == "workspaceblobstore"
    ds.set_as_default()
    assert Datastore(ws).name == "training_blobs"
    assert sorted(ws.datastores) == ["training_blobs", "workspaceblobstore"]
    ws.set_default_datastore("workspaceblobstore")
    ds.unregister()
    assert "training_blobs" not in ws.datastores

    # v1 except clauses still catch runyard's errors
    with pytest.raises(UserErrorException):
        Datastore.get(ws, "training_blobs")
    ref = default.upload_files(files=[str(data / "day0.csv")], target_path="one",
                               show_progress=False)
    assert ref.path_on_datastore == "one"
    assert str(ref).startswith("$AZUREML_DATAREFERENCE_")
