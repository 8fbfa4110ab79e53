"""The simulated agents' webhook endpoint: verify the signature, deduplicate by webhook-id, resume."""

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from standardwebhooks.webhooks import WebhookVerificationError

from exceptions_app.client import verify_webhook
from exceptions_app.simulation.local_server import LocalHTTPServer


class ResolutionReceiver:
    def __init__(self, *, secrets: Callable[[], dict[str, str]], on_resolution: Callable[[dict], None], port: int = 0):
        self._secrets = secrets
        self._on_resolution = on_resolution
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.server = LocalHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tollgate/resolutions"

    def _verify(self, body: bytes, headers: dict) -> dict | None:
        for secret in self._secrets().values():
            try:
                return verify_webhook(secret, body, headers)
            except WebhookVerificationError:
                continue
        return None

    def _accept(self, body: bytes, headers: dict) -> int:
        payload = self._verify(body, headers)
        if payload is None:
            return 401
        with self._lock:
            duplicate = headers.get("webhook-id") in self._seen
            self._seen.add(headers.get("webhook-id"))
        if not duplicate:
            self._on_resolution(payload)
        return 204

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(min(int(self.headers.get("content-length", 0)), 1_000_000))
                status = receiver._accept(body, {key.lower(): value for key, value in self.headers.items()})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        return Handler

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
