"""Byte-bounded intake: how much a producer can make the daemon hold, and how full it runs.

ZeroMQ queues whole messages per connection. The daemon bounds both the size of each frame
(``MAXMSGSIZE``: a peer that sends a larger frame is disconnected before the frame is held in
memory) and the number of queued messages per connection (``RCVHWM``); with ``queue_bytes`` it
lowers the latter so that one connection's queue never exceeds that many bytes. The largest
useful frame follows from the model: ``max_rows`` rows of its inputs or targets. A monitor
counts connections, so ``status`` states the bound in force (connections x messages x largest
message) next to how often the loop found more waiting than it could learn in one pass
(``backlogged``).

Why ``queue_bytes`` is off by default: ZeroMQ hands the messages of a producer that has already
closed its socket (and lingers) over only slowly once the receiver's queue has been full, so a
tight queue makes a short-lived producer's last messages arrive seconds late, or not before its
linger ends. Producers that resend (``Producer(control=...)``) lose nothing either way.
"""

from __future__ import annotations

from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from tweenstream.stream.protocol import Contract, Limits

_UP = zmq.EVENT_ACCEPTED | zmq.EVENT_CONNECTED
_DOWN = zmq.EVENT_DISCONNECTED
_AUTH_FAILED = getattr(zmq, "EVENT_HANDSHAKE_FAILED_AUTH", 0)


def monitor_events(monitor: zmq.Socket) -> list[int]:
    """The events waiting on a socket monitor, oldest first (never blocks)."""
    events = []
    while True:
        try:
            events.append(recv_monitor_message(monitor, zmq.NOBLOCK)["event"])
        except zmq.Again:
            return events


class Intake:
    """Socket limits from the model's contract, and intake figures for ``status``.

    Examples
    --------
    >>> intake = Intake(Contract(8, 4, True), Limits(), rcvhwm=1000)
    >>> intake.max_frame_bytes, intake.max_message_bytes, intake.rcvhwm
    (2097152, 2625536, 1000)
    >>> Intake(Contract(8, 4, True), Limits(), rcvhwm=1000, queue_bytes=64 << 20).rcvhwm
    25
    """

    def __init__(self, contract: Contract, limits: Limits, rcvhwm: int,
                 queue_bytes: int | None = None) -> None:
        row_x = contract.n_inputs * 4
        row_y = 8 if contract.classification else contract.n_outputs * 4
        self.max_frame_bytes = min(limits.max_bytes, max(limits.max_header_bytes,
                                                         limits.max_rows * max(row_x, row_y)))
        self.max_message_bytes = min(limits.max_bytes, limits.max_header_bytes
                                     + limits.max_rows * (row_x + row_y))
        self.rcvhwm = rcvhwm if queue_bytes is None \
            else max(1, min(rcvhwm, queue_bytes // self.max_message_bytes))
        self.queue_bytes = self.rcvhwm * self.max_message_bytes
        self.connections = 0
        self.auth_failures = 0
        self.polls = 0
        self.backlogged = 0
        self._monitor: zmq.Socket | None = None

    def bound(self, sock: zmq.Socket) -> None:
        """Set the frame-size and queue limits on a receiving socket (before bind/connect)."""
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_frame_bytes)
        sock.setsockopt(zmq.RCVHWM, self.rcvhwm)

    def watch(self, sock: zmq.Socket) -> None:
        """Count the connections of ``sock`` (the data socket)."""
        self._monitor = sock.get_monitor_socket(_UP | _DOWN | _AUTH_FAILED)

    def unwatch(self, sock: zmq.Socket) -> None:
        if self._monitor is not None:
            sock.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None

    def events(self) -> None:
        """Take in the monitor's events (never blocks)."""
        if self._monitor is None:
            return
        for event in monitor_events(self._monitor):
            if event & _UP:
                self.connections += 1
            elif event & _DOWN:
                self.connections = max(0, self.connections - 1)
            elif _AUTH_FAILED and event & _AUTH_FAILED:
                self.auth_failures += 1

    def summary(self) -> dict[str, Any]:
        return {"max_frame_bytes": self.max_frame_bytes,
                "max_message_bytes": self.max_message_bytes, "rcvhwm": self.rcvhwm,
                "queue_bytes_per_connection": self.queue_bytes,
                "connections": self.connections,
                "queue_bound_bytes": self.queue_bytes * max(1, self.connections),
                "auth_failures": self.auth_failures, "polls": self.polls,
                "backlogged_polls": self.backlogged}
