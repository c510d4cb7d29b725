import sys

from lab_common.service_main import run_service
from logging_service.app import build

if __name__ == "__main__":
    sys.exit(run_service("logging-service", 8081, build))
