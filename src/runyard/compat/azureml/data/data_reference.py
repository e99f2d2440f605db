"""``azureml.data.data_reference``: ``DataReference`` is runyard's (:mod:`runyard.datastore`);
in ``ScriptRunConfig(arguments=[...])`` it renders as the path of its files on the target."""

from runyard.datastore import DataReference

__all__ = ["DataReference"]
