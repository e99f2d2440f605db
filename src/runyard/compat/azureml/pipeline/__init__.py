"""``azureml.pipeline``: pipelines have not landed in runyard yet."""
