"""The Flask shape every service shares: JSON errors, a body limit, request parsing, /health, /live and /metrics."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import orjson
from flask import Flask, Response, current_app, g, jsonify, request
from flask.json.provider import JSONProvider

from lab_common import metrics
from lab_common.contracts import REQUEST_ID_HEADER
from lab_common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, register_error_handlers
from lab_common.settings import ServiceSettings

HealthCheck = Callable[[], tuple[bool, object]]
MAX_REQUEST_ID = 128
LISTING_CHUNK = 1000  # items joined per write of a listing
LISTING_PIECE_BYTES = 1 << 16  # a listing goes out in pieces this large
SPOOL_IN_MEMORY = 1 << 20  # a listing larger than this is kept in a temporary file until sent


class FastJSONProvider(JSONProvider):
    """JSON through orjson: several times faster than the standard library on the large GET answers;
    UTF-8 text as it is (no \\u escapes) and keys in the order they were built."""

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(orjson.dumps(obj), mimetype="application/json")


class WholeResponse(Response):
    """A body that is in memory already goes to the server as one piece: granian then writes it out at
    once, where it would call back into Python for every piece of an iterator."""

    def __call__(self, environ, start_response):
        pieces = super().__call__(environ, start_response)
        if not self.is_sequence:
            return pieces
        try:
            return [b"".join(pieces)]
        finally:
            pieces.close()


def create_base_app(name: str, settings: ServiceSettings) -> Flask:
    app = Flask(name, static_folder=None)  # the status page serves its own few files
    app.response_class = WholeResponse
    app.json = FastJSONProvider(app)
    # One byte past the limit: a body sent without a length (chunked) is read up to there, so a longer
    # one shows as too long instead of being cut to the limit.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_body_bytes  # werkzeug's own 500 kB cap on a form field
    app.extensions["lab.settings"] = settings
    register_error_handlers(app)
    app.before_request(_take_request_id)
    app.after_request(_answer_request_id)
    metrics.enable(settings.metrics)
    if settings.metrics:
        metrics.add_metrics(app)
    return app


def _take_request_id() -> None:
    g.request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER, ""))


def sane_request_id(given: str) -> str:
    """The caller's request id if it is a sane one (1-128 printable characters), else a new one."""
    given = given.strip()
    return given if 0 < len(given) <= MAX_REQUEST_ID and given.isprintable() else uuid.uuid4().hex


def _answer_request_id(response: Response) -> Response:
    request_id_now = g.get("request_id")
    if request_id_now:
        response.headers[REQUEST_ID_HEADER] = request_id_now
    return response


def request_id() -> str:
    """This request's id: what the caller sent as X-Request-Id, or one made for it."""
    return g.request_id


def add_health(app: Flask, settings: ServiceSettings, checks: Mapping[str, HealthCheck]) -> None:
    """GET /health: 200 when every check passes, else 503 naming the failing ones. GET /live: 200 whenever
    a request thread answers, checking nothing else: a liveness probe that does not restart copies while
    the cluster is away (they recover by themselves)."""

    @app.get("/health")
    def health():
        healthy, body = health_report(settings, checks)
        return jsonify(body), 200 if healthy else 503

    @app.get("/live")
    def live():
        return jsonify({"status": "alive", "service": settings.service, "instance": settings.instance})


def health_report(settings: ServiceSettings, checks: Mapping[str, HealthCheck]) -> tuple[bool, dict]:
    """Whether every check passes, and the /health body that says so."""
    results = {name: check() for name, check in checks.items()}
    healthy = all(ok for ok, _ in results.values())
    return healthy, {
        "status": "ok" if healthy else "unavailable",
        "service": settings.service,
        "instance": settings.instance,
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()},
    }


def request_fields() -> dict:
    """The request's fields from a JSON object or a form body, with a clear 4xx when it is neither."""
    limit = current_app.extensions["lab.settings"].max_body_bytes
    too_large = PayloadTooLarge(f"request body is over the {limit}-byte limit")
    if request.content_length and request.content_length > limit:
        raise too_large
    mimetype = request.mimetype
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise too_large
    if mimetype == "application/json" or (not mimetype and raw.lstrip().startswith(b"{")):
        try:
            fields = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise BadRequest(f"body is not valid JSON: {err}") from err
        if not isinstance(fields, dict):
            raise BadRequest("JSON body must be an object")
        return fields
    if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    if not raw:
        raise BadRequest('request body is empty: send the form msg=... or JSON {"msg": "..."}')
    raise UnsupportedMediaType(
        f"unsupported content type {mimetype or '(none)'}: send application/json or a form"
    )


def text_field(fields: dict, name: str, *aliases: str) -> str:
    """A required, non-blank string field; `aliases` are older names the lab used (e.g. txt)."""
    given = next((key for key in (name, *aliases) if key in fields and fields[key] is not None), None)
    if given is None:
        raise BadRequest(f"field '{name}' is missing" + "".join(f" (or '{alias}')" for alias in aliases))
    value = fields[given]
    if not isinstance(value, str):
        raise BadRequest(f"field '{given}' must be a string, not {type(value).__name__}")
    if not value.strip():
        raise BadRequest(f"field '{given}' is empty")
    return value


MAX_SEQ = 2**63 - 1  # a seq is a Hazelcast long (µs since the epoch)


def after_param(what: str) -> int | None:
    """The `after` cursor of a paged read: a seq, a whole number 0 to 2**63-1; 400 for anything else."""
    text = request.args.get("after")
    if text is None:
        return None
    after = _whole_number(text, MAX_SEQ)
    if after is None:
        raise BadRequest(f"after must be {what} (a whole number 0-{MAX_SEQ})")
    return after


def limit_param(default: int | None, maximum: int = 10_000) -> int | None:
    text = request.args.get("limit")
    if text is None:
        return default
    limit = _whole_number(text, maximum)
    if not limit:
        raise BadRequest(f"limit must be a whole number 1-{maximum}")
    return limit


def _whole_number(text: str, maximum: int) -> int | None:
    """`text` as a whole number 0 to `maximum` written in ASCII digits, else None (int() alone also reads
    other digits, and raises past 4,300 of them)."""
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(maximum)) or int(digits) > maximum:
        return None
    return int(digits)


def listing_response(fields: dict, pages: Iterable[Sequence[str]], *, key: str = "messages") -> Response:
    """`{**fields, "count": n, key: [...]}` from pages of items that are JSON texts already (as they are
    stored). The pages are written to a file as they come (in memory while small), so a
    failure while reading them is still a clean 503 and a full read of 100k messages holds neither an
    object per message nor the whole answer; the file then goes out in pieces."""
    file, count = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY), 0
    try:
        for page in pages:
            for start in range(0, len(page), LISTING_CHUNK):
                chunk = page[start:start + LISTING_CHUNK]
                file.write((b"," if count else b"") + ",".join(chunk).encode())
                count += len(chunk)
    except BaseException:
        file.close()
        raise
    file.seek(0)

    def pieces() -> Iterator[bytes]:
        try:
            yield orjson.dumps({**fields, "count": count})[:-1] + b',' + orjson.dumps(key) + b':['
            while piece := file.read(LISTING_PIECE_BYTES):
                yield piece
            yield b"]}"
        finally:
            file.close()

    return Response(pieces(), mimetype="application/json")
