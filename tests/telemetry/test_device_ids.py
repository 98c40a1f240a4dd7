"""One device-id rule for the registry and the broker's credential store."""

from __future__ import annotations

import pytest

from nazorat.services import AccountNameError, check_device_id
from telemetry.device_ids import device_id_problem
from telemetry.errors import InvalidInputError
from telemetry.store import registry


@pytest.mark.parametrize("bad", [".", "..", "...", "nazorat-engine", "NAZORAT-x", "a:b", "a/b", "", "x" * 65, "a b"])
def test_the_registry_and_the_credential_store_refuse_the_same_ids(bad: str) -> None:
    assert device_id_problem(bad) is not None
    with pytest.raises(InvalidInputError):
        registry.check_device_id(bad)
    with pytest.raises(AccountNameError):
        check_device_id(bad)


@pytest.mark.parametrize("good", ["d1", "ankle-000123", "a.b_c-d", "x" * 64, "nazorat"])
def test_ordinary_ids_pass_both(good: str) -> None:
    assert device_id_problem(good) is None
    registry.check_device_id(good)
    assert check_device_id(good) == good
