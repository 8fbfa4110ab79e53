"""The request body limit (TOLLGATE_MAX_BODY_BYTES) at the ASGI edge, before Django sees the request.

A declared length over the limit is refused at once, before a byte of the body is read. A streamed
body (``Transfer-Encoding: chunked``, no length) is read here as it arrives and refused as soon as it
passes the limit, without waiting for the rest; under the limit it goes on to Django with its length
declared. Django's WSGI request reads ``CONTENT_LENGTH`` bytes, so without this a streamed body
reached the views empty ("decisions: This field is required"). The refusal is the API's error shape
(exceptions_app.api.errors.body_too_large_body), and the connection is closed after it, since the
rest of the body is never read.
"""

import json

from django.conf import settings

from exceptions_app.api.errors import body_too_large_body


async def _refuse(send) -> None:
    body = json.dumps(body_too_large_body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def body_limited(app):
    """``app`` with bodies over the limit refused, and streamed bodies under it given a declared length."""

    async def limited(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length, streamed = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                streamed = True
        if length is not None and not streamed:
            if length.isdigit() and int(length) > limit:
                return await _refuse(send)
            return await app(scope, receive, send)
        if not streamed:
            return await app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _refuse(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [
            (name, value) for name, value in scope["headers"] if name not in (b"transfer-encoding", b"content-length")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        return await app({**scope, "headers": headers}, replay, send)

    return limited
