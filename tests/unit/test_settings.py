import pytest

from lab_common.settings import Settings, SettingsError


def test_flags_override_the_environment():
    settings = Settings.load("logging-service", default_port=8081, environ={"LAB_PORT": "9000", "HZ_MEMBERS": "h:1"},
                             argv=["--port", "9001"])
    assert settings.port == 9001
    assert settings.hz_members == ("h:1",)
    assert settings.instance == "logging-9001"


def test_every_invalid_value_is_named_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.load("x", default_port=1, environ={"LAB_PORT": "nope", "HZ_INVOCATION_TIMEOUT": "-1",
                                                     "HZ_MEMBERS": "no-port"}, argv=[])
    message = str(err.value)
    assert "LAB_PORT" in message and "HZ_INVOCATION_TIMEOUT" in message and "HZ_MEMBERS" in message


def test_hazelcast_timeouts_are_seconds_not_minutes():
    settings = Settings.load("x", default_port=1, environ={}, argv=[])
    assert settings.hz_invocation_timeout <= 10 and settings.hz_connect_timeout <= 10
