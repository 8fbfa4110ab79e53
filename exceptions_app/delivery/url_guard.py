"""Callback URLs must not reach into private networks (SSRF) unless the operator allowed it.

TOLLGATE_CALLBACK_ALLOW lists host names and CIDR ranges that are always allowed; any other host
must resolve only to public addresses.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from exceptions_app.errors import InvalidInput


def _refuse(url_field: str, message: str):
    return InvalidInput(f"callback URL refused: {message}", fields=[{"path": url_field, "message": message}])


def _allowed_networks() -> list:
    return [
        ipaddress.ip_network(entry, strict=False) for entry in settings.TOLLGATE_CALLBACK_ALLOW if _is_network(entry)
    ]


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def callback_url_check(url: str, *, field: str = "callback_url") -> None:
    """Raise InvalidInput unless ``url`` is http(s) and every address it resolves to is public or allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _refuse(field, "only http and https URLs are allowed")
    host = parts.hostname
    if not host:
        raise _refuse(field, "the URL has no host")
    if host.lower() in {entry.lower() for entry in settings.TOLLGATE_CALLBACK_ALLOW}:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except (OSError, ValueError, UnicodeError):
        raise _refuse(field, f"host {host!r} does not resolve") from None
    allowed = _allowed_networks()
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if any(ip in network for network in allowed):
            continue
        if not ip.is_global or ip.is_multicast:
            raise _refuse(field, f"{host} resolves to {ip}, a private, loopback or link-local address")
