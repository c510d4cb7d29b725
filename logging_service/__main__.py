import sys

from lab_common.service_main import run_service
from logging_service.settings import LoggingSettings

if __name__ == "__main__":
    # the app module is imported in the worker, after the fork (see lab_common.service_main)
    sys.exit(run_service(LoggingSettings, "logging-service", 8081, "logging_service.bootstrap:build"))
