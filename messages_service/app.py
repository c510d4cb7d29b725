"""messages-service's HTTP face: GET /messages answers what this copy received (never clears it), GET
/messages/journal its own journal of what it processed."""

from __future__ import annotations

from flask import Flask

from lab_common.openapi import add_openapi
from lab_common.settings import ServiceSettings
from lab_common.web import add_health, after_param, create_base_app, limit_param, listing_response
from messages_service.api import openapi
from messages_service.service import Inbox, Journal

JOURNAL_PAGE = 1000  # entries per page when only `after` is given


def create_app(settings: ServiceSettings, *, inbox: Inbox, journal: Journal, health_checks=None) -> Flask:
    app = create_base_app(__name__, settings)
    add_health(app, settings, health_checks or {})
    add_openapi(app, openapi())

    @app.get("/messages")
    def get_messages():
        return listing_response({"copy": settings.instance}, [inbox.received_as_json(settings.instance)])

    @app.get("/messages/journal")
    def get_journal():
        limit = limit_param(default=None)
        after = after_param("the 'next' value of the previous page (entries skipped)")
        if limit is None and after is None:
            return listing_response({"copy": settings.instance}, journal.pages(), key="entries")
        limit, after = limit or JOURNAL_PAGE, after or 0
        page = journal.page(after, limit)
        return listing_response({"copy": settings.instance, "next": str(after + len(page)) if len(page) >= limit
                                 else None}, [page], key="entries")

    return app
