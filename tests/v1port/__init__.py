"""v1-style control and training scripts (issue 11).

Control scripts import runyard.compat.azureml; training scripts are written as v1 users wrote
them."""
