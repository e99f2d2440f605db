"""A v1-style training script: logs a metric per epoch and writes its model to ./outputs."""

import argparse
import os
import time

from azureml.core import Run  # unchanged v1 import: runyard puts its azureml alias on the path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--data", required=True)
args = parser.parse_args()

run = Run.get_context()
for epoch in range(args.epochs):
    run.log("loss", 1.0 / (epoch + 1))
    print(f"epoch {epoch} on {args.data}", flush=True)
    time.sleep(0.1)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write("weights")
