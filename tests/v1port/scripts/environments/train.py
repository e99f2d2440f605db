"""A v1 training script, unchanged: it imports the Azure ML SDK (``azureml.core``)."""

import argparse
import os
import sys

from azureml.core import Run
from azureml.core.run import Run as ScriptRun

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()

run = Run.get_context()
assert ScriptRun is Run
for epoch in range(args.epochs):
    run.log("loss", 1.0 / (epoch + 1))
run.log("python", "{}.{}".format(*sys.version_info[:2]))
try:
    import six
    run.log("six", six.__version__)
except ImportError:
    run.log("six", "absent")
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write("weights\n")
print("trained for", args.epochs, "epochs")
