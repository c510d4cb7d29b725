import subprocess
import sys

from lab_common.service_main import _resolve, is_loopback


def test_a_builder_named_by_string_is_imported_when_it_is_needed():
    from config_server.bootstrap import build

    assert _resolve("config_server.bootstrap:build") is build
    assert _resolve(build) is build


def test_the_master_process_imports_neither_flask_nor_the_hazelcast_client():
    """What a service's __main__ imports before the server forks its worker stays small."""
    code = ("import sys; sys.argv = ['x', '--help']\n"
            "import lab_common.service_main, facade_service.__main__\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'hazelcast', 'werkzeug'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_only_loopback_addresses_count_as_loopback():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.53", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "::", "example.org"))
