"""A v1 training script that treats its folder as scratch space, as many did: it reads its
config, writes a cache next to itself, rewrites the config and the data, and saves a model."""
import hashlib
import json
import os

try:
    from azureml.core import Run  # unchanged v1 import (runyard's azureml alias on the path)
except ImportError:  # where that alias is not on the path: the compat path
    from runyard.compat.azureml.core import Run

run = Run.get_context()
with open("config.json") as fh:
    config = json.load(fh)
with open("data.bin", "rb") as fh:
    data = fh.read()
run.log("config_runs", config["runs"])
run.log("found_cache", int(os.path.exists("cache.txt")))
run.log("data_sha_prefix", hashlib.sha256(data).hexdigest()[:16])
with open("cache.txt", "w") as fh:  # scratch next to the code
    fh.write("cached")
with open("config.json", "w") as fh:  # "remember" a run in the config
    json.dump({"runs": config["runs"] + 1}, fh)
with open("data.bin", "r+b") as fh:  # scribble over the data in place
    fh.write(b"\0" * 64)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write("weights")
