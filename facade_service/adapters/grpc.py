"""The facade's gRPC transport to logging (LAB_LOGGING_TRANSPORT=grpc): a POST is logged by LoggingService.Log
on a copy found as logging-service-grpc, through the same failover as HTTP; reads stay on HTTP (the
listings are passed on as the copies wrote them). Answers as LoggingClient.log does, status for status."""

from __future__ import annotations

import logging
import time

import grpc

from facade_service.adapters.http import LoggingClient
from facade_service.service import FullListing, Listing
from lab_common import metrics
from lab_common.contracts import Logged, LoggedMessage
from lab_common.errors import BadRequest, NoQuorum, PayloadTooLarge, ServiceError, Unavailable
from lab_common.failover import CopyFailed, CopyRefused, Failover, Pace
from lab_common.grpc_support import Channels
from lab_common.proto import logging_pb2, logging_pb2_grpc

log = logging.getLogger(__name__)

# Statuses after which another copy is tried: the copy is away, too slow, or broke down. A Log that did
# store before failing is answered as a duplicate by the next copy (the uuid is the same).
FAILOVER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                      grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.ABORTED})


def error_of(code: grpc.StatusCode, details: str, target: str) -> Exception:
    """What a Log answered with `code` means to the facade: CopyFailed (try another copy; 503 once none is
    left), BadRequest (400), PayloadTooLarge (413), NoQuorum (503, the cluster refuses writes), or Unavailable
    (503) for a status no copy should give."""
    if code in FAILOVER:
        return CopyFailed(f"{target}: gRPC {code.name}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return BadRequest(details or "logging rejected the message")
    if code == grpc.StatusCode.FAILED_PRECONDITION:  # the copy's cluster refuses writes: so would any copy's
        return NoQuorum()
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # over the copy's receive limit, as HTTP's 413
        return PayloadTooLarge(f"the message is too large for logging: {details}")
    return Unavailable(f"logging answered gRPC {code.name}: {details}")


def logged(reply: logging_pb2.LogReply) -> Logged:
    """The reply as the contract's Logged, as the HTTP client answers it."""
    return Logged(LoggedMessage(reply.uuid, reply.msg, reply.logged_by, reply.seq), reply.duplicate, reply.copy)


class GrpcLoggingClient:
    """The LoggingPort with log() over gRPC and the reads through the HTTP client given."""

    def __init__(self, failover: Failover, reads: LoggingClient, *, timeout: float, channels: Channels | None = None):
        self._failover = failover
        self.pace = Pace()  # as LoggingClient.pace
        self._reads = reads
        self._timeout = timeout
        self._channels = channels or Channels(logging_pb2_grpc.LoggingServiceStub)

    def log(self, uuid: str, msg: str, request_id: str | None = None, window: float = 0.0) -> Logged:
        request = logging_pb2.LogRequest(uuid=uuid, msg=msg, request_id=request_id or "")
        return self._failover.run(lambda target: self._log_at(target, request), window=window, pace=self.pace)

    def _log_at(self, target: str, request: logging_pb2.LogRequest) -> Logged:
        started, answered = time.perf_counter(), False
        try:
            reply = self._channels.stub(target).Log(request, timeout=self._timeout)
            answered = True
            return logged(reply)
        except grpc.RpcError as err:
            error = error_of(err.code(), err.details() or "", target)
            answered = isinstance(error, ServiceError)  # the copy answered; CopyFailed: it did not
            if not answered:
                log.warning("gRPC Log at %s failed: %s", target, err.code().name)
            if isinstance(error, NoQuorum):  # another copy may be on the larger side of a partition
                raise CopyRefused(f"{target}: {error.message}", error) from None
            raise error from None
        finally:
            metrics.record_call(self._failover.service, target, time.perf_counter() - started, answered)

    def messages(self) -> FullListing:
        return self._reads.messages()

    def page(self, limit: int, after: str | None) -> Listing:
        return self._reads.page(limit, after)

    def close(self) -> None:
        self._channels.close()
