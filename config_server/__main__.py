import sys

from config_server.app import build
from lab_common.service_main import run_service

if __name__ == "__main__":
    sys.exit(run_service("config-server", 8888, build))
