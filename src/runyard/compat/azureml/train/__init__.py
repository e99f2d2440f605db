"""``azureml.train``: sweeps and AutoML have not landed in runyard yet."""
