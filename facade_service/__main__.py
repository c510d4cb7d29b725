import sys

from facade_service.settings import FacadeSettings
from lab_common.service_main import run_service

if __name__ == "__main__":
    # the app module is imported in the worker, after the fork (see lab_common.service_main)
    sys.exit(run_service(FacadeSettings, "facade-service", 8080, "facade_service.bootstrap:build"))
