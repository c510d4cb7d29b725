"""logging-service's gRPC face (lab_common/proto/logging.proto): Log stores {uuid, msg} through the same
MessageLog as POST /logging, with the same checks and the same answers (a repeat is a duplicate)."""

from __future__ import annotations

import logging
import time

import grpc

from lab_common import metrics
from lab_common.errors import BadRequest, ServiceError
from lab_common.grpc_support import GrpcServer, status_of
from lab_common.logs import ERROR_PREFIX, clipped
from lab_common.proto import logging_pb2, logging_pb2_grpc
from lab_common.web import sane_request_id
from logging_service.service import MAX_UUID_LENGTH, MessageLog
from logging_service.settings import LoggingSettings

log = logging.getLogger(__name__)

SERVICE_NAME = logging_pb2.DESCRIPTOR.services_by_name["LoggingService"].full_name
LOG_METHOD = f"/{SERVICE_NAME}/Log"


def entry_problem(uuid: str, msg: str) -> str | None:
    """What POST /logging would refuse with a 400 in these fields, or None."""
    for name, value in (("uuid", uuid), ("msg", msg)):
        if not value.strip():
            return f"field '{name}' is missing or empty"
    if len(uuid) > MAX_UUID_LENGTH:
        return f"uuid is longer than {MAX_UUID_LENGTH} characters"
    return None


class LoggingServicer(logging_pb2_grpc.LoggingServiceServicer):
    def __init__(self, message_log: MessageLog, instance: str):
        self._log = message_log
        self._instance = instance

    def Log(self, request: logging_pb2.LogRequest, context: grpc.ServicerContext) -> logging_pb2.LogReply:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            problem = entry_problem(request.uuid, request.msg)
            if problem:
                raise BadRequest(problem)
            result = self._log.record(request.uuid, request.msg, sane_request_id(request.request_id))
        except ServiceError as err:
            code = status_of(err)
            if code == grpc.StatusCode.UNAVAILABLE:
                log.warning("gRPC Log: %s", clipped(err.message, ERROR_PREFIX))
            context.abort(code, err.message)
        except Exception:
            code = grpc.StatusCode.UNKNOWN  # what grpc answers for it
            log.exception("unexpected error in gRPC Log")
            raise
        finally:
            metrics.record_grpc_request(LOG_METHOD, code.name, time.perf_counter() - started)
        stored = result.message
        return logging_pb2.LogReply(duplicate=not result.created, copy=self._instance, uuid=stored.uuid,
                                    msg=stored.msg, logged_by=stored.logged_by, seq=stored.seq)


def serve_grpc(settings: LoggingSettings, message_log: MessageLog, can_store) -> GrpcServer:
    """The copy's gRPC server, started: Log, and the health service SERVING only while `can_store()`."""
    servicer = LoggingServicer(message_log, settings.instance)
    return GrpcServer(settings, lambda server: logging_pb2_grpc.add_LoggingServiceServicer_to_server(servicer, server),
                      can_store=can_store, services=[SERVICE_NAME]).start()
