"""A slow link without netem: holds every packet a host sends for a delay (± jitter), then lets it go.

Runs inside a host's namespace, where an iptables rule hands every packet leaving the host's veth to
netfilter queue QUEUE (`-j NFQUEUE --queue-bypass`: with no delayer bound, packets pass). It speaks the
nfnetlink_queue protocol itself, copying no payload (metadata only), and lets packets go in the order they
came: each leaves at max(previous one's time, its arrival + delay + a uniform draw in ±jitter), so the link
is slow, not reordering, and one batch verdict ("accept every id up to N") releases all that are due.
SIGTERM lets every held packet go at once, then exits.
Usage: python -m labctl.netfaults.delayer --queue 1 --delay-ms 100 [--jitter-ms 20]
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import select
import signal
import socket
import struct
import sys
import time

log = logging.getLogger("delayer")

NETLINK_NETFILTER = 12
NETLINK_NO_ENOBUFS = 5
SUBSYS_QUEUE = 3 << 8
MSG_PACKET, MSG_CONFIG, MSG_VERDICT_BATCH = SUBSYS_QUEUE | 0, SUBSYS_QUEUE | 2, SUBSYS_QUEUE | 3
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN = 1, 2, 3
CMD_BIND = 1
COPY_META = 1
ATTR_PACKET_HDR = 1
ATTR_VERDICT_HDR = 2
NF_ACCEPT = 1
QUEUE_MAXLEN = 50_000  # packets held at once; past it the kernel drops (a 100 ms link at 5k packets/s holds 500)


def attribute(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (-length % 4)


def message(kind: int, queue: int, payload: bytes, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + payload
    return struct.pack("=IHHII", 16 + len(body), kind, flags, 0, 0) + body


def packet_ids(data: bytes) -> list[int]:
    """The packet ids of every queued-packet message in one netlink datagram."""
    ids, offset = [], 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == MSG_PACKET:
            at = offset + 20  # netlink header, then nfgenmsg
            while at + 4 <= offset + length:
                size, attr = struct.unpack_from("=HH", data, at)
                if attr & 0x7FFF == ATTR_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, at + 4)[0])
                    break
                at += max(4, (size + 3) & ~3)
        offset += (length + 3) & ~3
    return ids


class Delayer:
    def __init__(self, queue: int, delay_s: float, jitter_s: float, rng: random.Random | None = None):
        self.queue, self.delay_s, self.jitter_s = queue, delay_s, jitter_s
        self.rng = rng or random.Random()
        self.held: collections.deque[tuple[float, int]] = collections.deque()  # (due, id), in id order
        self.last_due = 0.0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)

    def bind(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: root may pass rmem_max
        self.sock.setsockopt(270, NETLINK_NO_ENOBUFS, 1)  # SOL_NETLINK: a missed notice is released by the next batch
        self.sock.bind((0, 0))
        self._configure(attribute(CFG_CMD, struct.pack("=BxH", CMD_BIND, socket.htons(socket.AF_INET))))
        self._configure(attribute(CFG_PARAMS, struct.pack("!IB", 0, COPY_META))
                        + attribute(CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN)))

    def _configure(self, payload: bytes) -> None:
        self.sock.send(message(MSG_CONFIG, self.queue, payload, NLM_F_REQUEST | NLM_F_ACK))
        answer = self.sock.recv(65536)
        if struct.unpack_from("=H", answer, 4)[0] == NLMSG_ERROR:
            error = struct.unpack_from("=i", answer, 16)[0]
            if error:
                raise OSError(-error, f"netfilter queue {self.queue}: configuration refused")

    def due(self, arrived: float) -> float:
        self.last_due = max(self.last_due, arrived + self.delay_s + self.rng.uniform(-self.jitter_s, self.jitter_s))
        return self.last_due

    def release(self, now: float) -> None:
        """One batch verdict accepting every packet whose time has come (ids below it were queued earlier)."""
        highest = None
        while self.held and self.held[0][0] <= now:
            highest = self.held.popleft()[1]
        if highest is not None:
            self.sock.send(message(MSG_VERDICT_BATCH, self.queue,
                                   attribute(ATTR_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, highest))))

    def run(self, stop) -> None:
        while not stop():
            timeout = max(0.0, self.held[0][0] - time.monotonic()) if self.held else 0.5
            readable, _, _ = select.select([self.sock], [], [], timeout)
            if readable:
                arrived = time.monotonic()
                for packet in packet_ids(self.sock.recv(1 << 16)):
                    self.held.append((self.due(arrived), packet))
            self.release(time.monotonic())
        self.release(float("inf"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labctl.netfaults.delayer", description=__doc__.split("\n")[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    delayer = Delayer(args.queue, args.delay_ms / 1000, args.jitter_ms / 1000)
    delayer.bind()
    log.info("bound queue %d: holding each packet %g ms ± %g ms", args.queue, args.delay_ms, args.jitter_ms)
    sys.stdout.flush()
    delayer.run(lambda: bool(stopping))
    log.info("stopped: every held packet let go")
    return 0


if __name__ == "__main__":
    sys.exit(main())
