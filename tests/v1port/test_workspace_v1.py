"""Azure ML v1 workspace identity and config, authentication classes, and v1's exception
classes catching runyard's errors (issue 11, items 3 and 4). Real workspaces on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runyard import Workspace as RyWorkspace
from runyard.compat.azureml.core import Experiment, Workspace
from runyard.compat.azureml.core.authentication import (
    AzureCliAuthentication,
    InteractiveLoginAuthentication,
    MsiAuthentication,
    ServicePrincipalAuthentication,
    TokenAuthentication,
)
from runyard.compat.azureml.core.compute import ComputeTarget
from runyard.compat.azureml.exceptions import (
    AzureMLException,
    ComputeTargetException,
    SnapshotException,
    UserErrorException,
    WorkspaceException,
)
from runyard.errors import InvalidParameter, NotFound, NotSupported, RunyardError, error_table

AZURE = {"subscription_id": "0000-sub", "resource_group": "ml-rg", "workspace_name": "team-ws"}


@pytest.fixture(autouse=True)
def _config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config-home"))


def project_with(tmp_path: Path, where: str, data: dict[str, str]) -> Path:
    """A v1 project folder holding ``<where>/config.json``; returns the project folder."""
    project = tmp_path / "project"
    folder = project / where if where else project
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(data))
    (project / "src" / "deep").mkdir(parents=True)
    return project


def test_azure_config_maps_to_a_workspace_created_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_with(tmp_path, ".azureml", AZURE)
    monkeypatch.chdir(project / "src" / "deep")  # from_config walks up
    ws = Workspace.from_config()
    err = capsys.readouterr().err
    assert err.count("runyard: created workspace 'team-ws'") == 1
    assert str(project / ".azureml" / "config.json") in err
    assert ws.name == "team-ws" and ws.path == project.resolve()
    assert (ws.subscription_id, ws.resource_group, ws.location) == ("0000-sub", "ml-rg", "local")
    stored = json.loads((project / ".runyard" / "config.json").read_text())
    assert stored["subscription_id"] == "0000-sub" and stored["resource_group"] == "ml-rg"
    ws.close()

    again = Workspace.from_config()  # the same workspace, not created again, not said again
    assert again.path == project.resolve() and capsys.readouterr().err == ""
    details = again.get_details()
    assert details["id"] == ("/subscriptions/0000-sub/resourceGroups/ml-rg/providers/"
                             "Microsoft.MachineLearningServices/workspaces/team-ws")
    assert details["name"] == "team-ws" and details["location"] == "local"
    assert details["type"] == "Microsoft.MachineLearningServices/workspaces"
    assert details["subscriptionId"] == "0000-sub" and details["resourceGroup"] == "ml-rg"
    assert len(details["workspaceid"]) == 32
    again.close()

    # the v1 constructor and Workspace.get find it too, and check the stored identity
    ws3 = Workspace("0000-sub", "ml-rg", "team-ws")
    assert ws3.name == "team-ws"
    ws4 = Workspace.get("team-ws", subscription_id="0000-sub", resource_group="ml-rg")
    assert ws4 == ws3
    with pytest.raises(NotFound, match="subscription_id '0000-sub'.*'other-sub'"):
        Workspace("other-sub", "ml-rg", "team-ws")
    with pytest.raises(NotFound, match="not 'another'"):
        Workspace.get("another")
    ws3.close()
    ws4.close()


@pytest.mark.parametrize("where", ["aml_config", ""])
def test_azure_config_in_aml_config_or_the_folder(tmp_path: Path, where: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_with(tmp_path, where, AZURE)
    monkeypatch.chdir(project / "src")
    ws = Workspace.from_config()
    assert ws.path == project.resolve() and ws.resource_group == "ml-rg"
    assert (project / ".runyard" / "config.json").is_file()
    ws.close()
    # from_config(path=file) takes the file itself
    ws2 = Workspace.from_config(str(project / where / "config.json"))
    assert ws2 == ws
    ws2.close()


def test_an_unrelated_config_json_is_not_a_workspace(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_with(tmp_path, "", {"learning_rate": "0.1"})
    monkeypatch.chdir(project)
    with pytest.raises(NotFound, match="config.json"):
        Workspace.from_config()
    assert not (project / ".runyard").exists()


def test_azure_config_without_workspace_name_names_the_key(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    bad = {"subscription_id": "s", "resource_group": "r"}
    project = project_with(tmp_path, ".azureml", bad)
    monkeypatch.chdir(project)
    with pytest.raises(InvalidParameter) as err:
        Workspace.from_config()
    assert err.value.field == "workspace_name"
    assert "'workspace_name'" in str(err.value)
    assert str(project / ".azureml" / "config.json") in str(err.value)
    assert not (project / ".runyard").exists()  # nothing stored
    assert isinstance(err.value, UserErrorException)


def test_runyards_own_config_keeps_working_and_defaults(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    created = RyWorkspace.create("plain", tmp_path / "plain")
    (tmp_path / "plain" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "plain" / "sub")
    ws = Workspace.from_config()
    assert ws == created and type(ws) is Workspace
    assert (ws.subscription_id, ws.resource_group, ws.location) == ("local", "local", "local")
    assert ws.get_details()["id"].startswith("/subscriptions/local/resourceGroups/local/")
    # an identity given to the constructor shows on that object; nothing is stored
    given = Workspace("sub-x", "rg-x", "plain", _location="westeurope")
    assert (given.subscription_id, given.resource_group, given.location) == (
        "sub-x", "rg-x", "westeurope")
    assert "subscription_id" not in json.loads(
        (tmp_path / "plain" / ".runyard" / "config.json").read_text())
    v1_created = Workspace.create("made", subscription_id="s1", resource_group="r1",
                                  location="northeurope", path=tmp_path / "made")
    assert (v1_created.subscription_id, v1_created.location) == ("s1", "northeurope")
    for w in (ws, created, given, v1_created):
        w.close()


def test_auth_classes_are_accepted_ignored_and_keep_secrets(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from runyard.compat.azureml.core import workspace as compat_ws

    monkeypatch.setattr(compat_ws, "_NOTED", set())
    secret = "pa55-w0rd-very-secret"
    sp = ServicePrincipalAuthentication(tenant_id="tenant-1", service_principal_id="app-1",
                                        service_principal_password=secret)
    assert secret not in repr(sp) and secret not in str(sp) and "app-1" in repr(sp)
    assert secret not in repr(vars(sp))
    with pytest.raises(NotSupported) as err:
        sp.get_authentication_header()
    assert secret not in str(err.value)
    others = [InteractiveLoginAuthentication(), AzureCliAuthentication(), MsiAuthentication(),
              TokenAuthentication(lambda audience: "tok")]
    RyWorkspace.create("authws", tmp_path).close()
    monkeypatch.chdir(tmp_path)
    ws = Workspace("s", "r", "authws", auth=sp)
    ws2 = Workspace("s", "r", "authws", auth=sp)
    for auth in others:
        Workspace.get("authws", auth=auth).close()
    err_text = capsys.readouterr().err
    assert secret not in err_text
    assert err_text.count("auth=ServicePrincipalAuthentication ignored") == 1  # once
    assert "auth=MsiAuthentication ignored" in err_text
    assert len(err_text.strip().splitlines()) == 5  # one line per class
    assert secret not in repr(ws) and secret not in json.dumps(ws.get_details())
    ws.close()
    ws2.close()


def test_v1_except_clauses_catch_runyard_errors(tmp_path: Path) -> None:
    ws = RyWorkspace.create("errs", tmp_path / "errs")
    caught = []
    try:
        Experiment(ws, "bad name with spaces")
    except UserErrorException as exc:
        caught.append(type(exc).__name__)
    try:
        ws.get_run("no-such-run")
    except UserErrorException as exc:
        caught.append(type(exc).__name__)
    try:
        ComputeTarget(ws, "no-such-target")
    except ComputeTargetException as exc:
        caught.append(type(exc).__name__)
    try:
        RyWorkspace.get("x", tmp_path / "empty-folder")
    except WorkspaceException as exc:
        caught.append(type(exc).__name__)
    assert caught == ["InvalidParameter", "NotFound", "ComputeTargetNotFound", "WorkspaceError"]
    from runyard.errors import SnapshotTooLarge, TargetUnavailable

    assert issubclass(SnapshotTooLarge, SnapshotException)
    assert issubclass(TargetUnavailable, ComputeTargetException)
    # one root for runyard code, and every runyard error is an AzureMLException
    assert all(issubclass(cls, RunyardError) and issubclass(cls, AzureMLException)
               for _code, cls, _status in error_table())
    assert not issubclass(AzureMLException, RunyardError)
    ws.close()
