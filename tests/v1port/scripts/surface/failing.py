"""A v1 training script that fails."""
try:
    from azureml.core import Run
except ImportError:
    from runyard.compat.azureml.core import Run

run = Run.get_context()
raise SystemExit("data folder missing")
