import sys

from facade_service.app import build
from lab_common.service_main import run_service

if __name__ == "__main__":
    sys.exit(run_service("facade-service", 8080, build))
