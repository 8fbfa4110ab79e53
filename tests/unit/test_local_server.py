"""A local webhook receiver must queue a whole delivery batch of connections while it is busy.

socketserver listens with a backlog of 5. A drain opens DRAIN_BATCH (16) connections at once, so
when the receiver's accept loop fell behind, the kernel dropped the later handshakes and the
senders waited for SYN retransmits (1 s, then 3 s, 7 s...): CI saw one delivery of 35 time out.
"""

import socket
from http.server import ThreadingHTTPServer

import pytest

from exceptions_app.simulation.local_server import LocalHTTPServer

BATCH = 16  # exceptions_app.services.delivery_attempts.DRAIN_BATCH; importing it needs Django settings


def _handshakes_completed(server: ThreadingHTTPServer, attempts: int) -> int:
    """Connect ``attempts`` sockets while the server accepts none; how many handshakes completed."""
    sockets, completed = [], 0
    try:
        for _ in range(attempts):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.settimeout(0.3)
            sockets.append(client)
            try:
                client.connect(server.server_address)
                completed += 1
            except (TimeoutError, OSError):
                pass
    finally:
        for client in sockets:
            client.close()
    return completed


def test_the_default_backlog_drops_part_of_a_batch():
    # The premise: without the larger backlog, a batch does not fit. If this fails, the kernel or
    # socketserver changed and the test below proves nothing.
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    try:
        assert _handshakes_completed(server, BATCH) < BATCH
    finally:
        server.server_close()


@pytest.mark.parametrize("batches", [1, 4])
def test_a_local_receiver_queues_whole_batches_while_it_accepts_none(batches):
    server = LocalHTTPServer(("127.0.0.1", 0), None)
    try:
        assert _handshakes_completed(server, BATCH * batches) == BATCH * batches
    finally:
        server.server_close()


def test_a_local_receiver_does_not_keep_the_process_alive():
    assert LocalHTTPServer.daemon_threads
