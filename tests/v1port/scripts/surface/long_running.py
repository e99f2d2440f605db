"""A v1 training script that keeps going until stopped from outside (run.fail/complete)."""
import os
import sys
import time

try:
    from azureml.core import Run
except ImportError:
    from runyard.compat.azureml.core import Run

run = Run.get_context()
run.log("started", 1)
run.flush()
with open(sys.argv[1], "w") as fh:  # tells the test which process to watch
    fh.write(str(os.getpid()))
print("working", flush=True)
while True:
    time.sleep(0.2)
