"""The loopback HTTP server behind the demo's webhook receiver, the tests' receivers and the benchmarks' sinks."""

from http.server import ThreadingHTTPServer


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per request, and a listen queue that holds several delivery batches.

    socketserver's backlog is 5. A drain sends a batch of 16 webhooks at once (DRAIN_BATCH), so with the
    default the kernel dropped the later handshakes whenever the accept loop fell behind, and those senders
    waited for SYN retransmits (1 s, 3 s, 7 s): on a busy machine, long enough to time a delivery out.
    """

    daemon_threads = True
    request_queue_size = 128
