"""A v1 control script registers the model its v1 training script wrote (Azure ML v1 spelling
through ``runyard.compat.azureml``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import write


def test_v1_control_script_registers_and_fetches_the_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runyard.compat.azureml.core import Experiment, Model, ScriptRunConfig, Workspace
    from runyard.compat.azureml.exceptions import UserErrorException

    ws = Workspace.create("v1ws", path=str(tmp_path / "ws"))
    src = tmp_path / "src"
    write(src, "train.py", """
        import os
        import pickle
        from azureml.core import Run
        run = Run.get_context()
        run.log("alpha", 0.4)
        os.makedirs("outputs", exist_ok=True)
        with open("outputs/ridge_0.40.pkl", "wb") as f:
            pickle.dump({"alpha": 0.4}, f)
    """)
    run = Experiment(ws, "train-on-local").submit(ScriptRunConfig(str(src), "train.py"))
    run.wait_for_completion(show_output=False)
    model = run.register_model(model_name="ridge", model_path="./outputs/ridge_0.40.pkl",
                               tags={"alpha": "0.4"})
    assert "Registering model ridge" in capsys.readouterr().out
    assert (model.id, model.run_id, model.experiment_name) == ("ridge:1", run.id,
                                                                "train-on-local")
    again = Model.register(workspace=ws, model_path=str(src / "train.py"), model_name="ridge")
    assert again.version == 2
    latest = Model(ws, name="ridge")
    assert latest.version == 2
    assert [m.version for m in Model.list(ws, name="ridge")] == [2, 1]
    with pytest.raises(UserErrorException, match="cannot be found"):
        Model.register(ws, str(tmp_path / "missing.pkl"), "ridge")
    path = Model(ws, "ridge", version=1).download(target_dir=str(tmp_path / "dl"))
    assert Path(path).name == "ridge_0.40.pkl"
