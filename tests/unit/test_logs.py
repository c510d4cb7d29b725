from lab_common.errors import Unavailable
from lab_common.logs import ERROR_PREFIX, MESSAGE_PREFIX, clipped
from lab_common.web import create_base_app


def test_a_short_text_is_shown_whole_and_quoted():
    assert clipped("hello") == "'hello'"
    assert clipped("x" * MESSAGE_PREFIX) == repr("x" * MESSAGE_PREFIX)


def test_a_long_text_shows_its_prefix_an_ellipsis_and_its_length():
    assert clipped("hello world" * 500, keep=9) == "'hello wor…' (5500 chars)"
    assert clipped("é" * 5000).startswith(repr("é" * MESSAGE_PREFIX + "…")[:-1])


def test_an_error_text_keeps_a_longer_prefix():
    text = "Unavailable: " + "m" * 1000
    assert clipped(text, ERROR_PREFIX) == f"{text[:ERROR_PREFIX] + '…'!r} (1013 chars)"


def test_line_breaks_in_a_text_cannot_start_a_log_line_of_their_own():
    assert "\n" not in clipped("first\nlogged uuid=forged")


def test_a_5xx_answer_is_logged_with_only_the_start_of_its_text(settings, caplog):
    app = create_base_app("test", settings)

    @app.get("/fail")
    def fail():
        raise Unavailable("logging answered 500: " + "m" * 5000)

    caplog.set_level("WARNING", logger="lab_common.errors")
    assert app.test_client().get("/fail").status_code == 503
    [line] = [r.getMessage() for r in caplog.records if r.name == "lab_common.errors"]
    assert line.startswith("unavailable: 'logging answered 500: mmm") and line.endswith("…' (5022 chars)")
