"""``azureml.train``: estimators (``estimator``, ``sklearn``, ``dnn``) and sweeps
(``hyperdrive``) are runyard's; AutoML (``automl``) has not landed yet."""
