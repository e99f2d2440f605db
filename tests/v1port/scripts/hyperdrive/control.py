# An Azure ML v1 HyperDrive control script: only its imports were changed
# (azureml -> runyard.compat.azureml).
import sys

from runyard.compat.azureml.core import Experiment, Workspace
from runyard.compat.azureml.train.hyperdrive import (
    BanditPolicy,
    HyperDriveConfig,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
)
from runyard.compat.azureml.train.sklearn import SKLearn

ws = Workspace.from_config()
experiment = Experiment(workspace=ws, name="v1-hyperdrive")
estimator = SKLearn(source_directory=sys.argv[1], entry_script="train.py",
                    compute_target="local", script_params={"--folds": 3})
param_sampling = RandomParameterSampling({"--C": choice(0.01, 0.1, 1.0, 10.0)},
                                         properties={"seed": 5})
early_termination_policy = BanditPolicy(evaluation_interval=1, slack_factor=0.2,
                                        delay_evaluation=1)
hyperdrive_config = HyperDriveConfig(estimator=estimator,
                                     hyperparameter_sampling=param_sampling,
                                     policy=early_termination_policy,
                                     primary_metric_name="mean_accuracy",
                                     primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                                     max_total_runs=4,
                                     max_concurrent_runs=2)
hyperdrive_run = experiment.submit(hyperdrive_config)
hyperdrive_run.wait_for_completion(show_output=True)
best_run = hyperdrive_run.get_best_run_by_primary_metric()
best_run_metrics = best_run.get_metrics()
parameter_values = best_run.get_details()["runDefinition"]["arguments"]
print("Best Run Id: ", best_run.id)
print("Accuracy:", best_run_metrics["mean_accuracy"])
print("Arguments:", parameter_values)
model = best_run.register_model(model_name="sklearn-hd", model_path="outputs/model.pkl")
print("Registered", model.name, model.version)
