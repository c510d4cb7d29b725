"""schemathesis against the live system: every service's answers to generated requests (bounded, seeded)
are never a 5xx and conform to the service's own OpenAPI description."""


import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.helpers import port_offset, started_system

pytestmark = pytest.mark.e2e

PORT_OFFSET = port_offset(15_500)  # members on 21201-21203, their metrics on 25201-25203, the facade on 23580
EXAMPLES = 25  # per operation: a few seconds per service; seeded, so a run repeats the last one


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("fuzz"), "fuzz", port_offset=PORT_OFFSET) as system:
        yield system


bounded = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("copy", ["facade-1", "logging-1", "messages-1", "config-server"])
def test_every_operation_answers_as_its_description_says_and_never_with_a_5xx(system, copy):
    """Each operation of the copy's /openapi.json, fed generated requests (schemathesis' strategies, run by
    hypothesis here: schemathesis' own pytest plugin does not load under this pytest)."""
    description = schemathesis.openapi.from_url(system.url(copy) + "/openapi.json")
    operations = [result.ok() for result in description.get_all_operations()]
    assert operations
    for operation in operations:
        @given(case=operation.as_strategy())
        @bounded
        def answers_as_described(case):
            case.call_and_validate()

        answers_as_described()
