"""Asset names (datastores, datasets, models) and environment spec fields are checked whole:
a trailing newline, a NUL, a path separator or an over-long name is refused, not stored
(``re.match`` with ``$`` would let ``"name\\n"`` through)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runyard.errors import InvalidParameter
from runyard.services.datasets import check_dataset_name
from runyard.services.datastores import check_datastore_name
from runyard.services.models import check_model_name

CHECKS: dict[str, Callable[[object], str]] = {
    "datastore": check_datastore_name, "dataset": check_dataset_name, "model": check_model_name}
BAD = ["ok\n", "ok\x00", "../ok", "ok/x", "", " ok", "x" * 256, 7]


@pytest.mark.security
@pytest.mark.parametrize("kind", sorted(CHECKS))
@pytest.mark.parametrize("name", BAD, ids=repr)
def test_bad_asset_names_are_refused(kind: str, name: object) -> None:
    with pytest.raises(InvalidParameter):
        CHECKS[kind](name)


@pytest.mark.security
@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_good_asset_names_pass(kind: str) -> None:
    assert CHECKS[kind]("train-data_2") == "train-data_2"
