import sys

from lab_common.service_main import run_service
from messages_service.app import build

if __name__ == "__main__":
    sys.exit(run_service("messages-service", 8082, build))
