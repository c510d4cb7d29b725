"""config-server's composition root: the registry file the settings name, loaded once, behind the routes
(app.py)."""

from __future__ import annotations

from pathlib import Path

from config_server.app import DEFAULT_REGISTRY, create_app, load_registry
from config_server.settings import ConfigServerSettings


def build(settings: ConfigServerSettings):
    path = Path(settings.registry_file) if settings.registry_file else DEFAULT_REGISTRY
    return create_app(settings, registry=load_registry(path)), lambda: None
