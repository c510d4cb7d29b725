import pytest

from lab_common.settings import Settings


@pytest.fixture
def settings():
    return Settings.load("test-service", default_port=9999, environ={}, argv=[], instance="test-1")
