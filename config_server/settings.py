"""What config-server reads: the common settings and its registry file."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.settings import ServiceSettings, setting


@dataclass(frozen=True)
class ConfigServerSettings(ServiceSettings):
    registry_file: str = setting(
        "", "LAB_REGISTRY_FILE", "--registry-file", str, "JSON file of service addresses (default: the packaged one)"
    )
