"""Fixtures shared by the integration, end-to-end and drill suites: real systems through the launcher."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def unique_name(request) -> str:
    """A map/queue name no other test uses, so tests never share state."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
