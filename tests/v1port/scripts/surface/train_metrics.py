"""A v1 training script: logs an integer, a float series and a string; writes outputs."""
import os

try:
    from azureml.core import Run  # unchanged v1 import (runyard's azureml alias on the path)
except ImportError:  # where that alias is not on the path: the compat path
    from runyard.compat.azureml.core import Run

run = Run.get_context()
run.log("epochs", 3)
for loss in (0.5, 0.25):
    run.log("loss", loss)
run.log("whole_float", 2.0)
run.log("optimizer", "sgd")
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write("weights")
print("training finished: epochs=3")
