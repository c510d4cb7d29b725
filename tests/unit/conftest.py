import pytest

from lab_common.settings import ServiceSettings


@pytest.fixture
def settings():
    return ServiceSettings.load("test-service", default_port=9999, environ={}, argv=[], instance="test-1")
