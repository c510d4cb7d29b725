import sys

from lab_common.service_main import run_service
from messages_service.settings import MessagesSettings

if __name__ == "__main__":
    # the app module is imported in the worker, after the fork (see lab_common.service_main)
    sys.exit(run_service(MessagesSettings, "messages-service", 8082, "messages_service.bootstrap:build"))
