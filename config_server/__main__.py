import sys

from config_server.settings import ConfigServerSettings
from lab_common.service_main import run_service

if __name__ == "__main__":
    # the app module is imported in the worker, after the fork (see lab_common.service_main)
    sys.exit(run_service(ConfigServerSettings, "config-server", 8888, "config_server.bootstrap:build"))
