"""Domain errors. The API maps each to a status code and the one error shape; the console to a message."""


class DomainError(Exception):
    status_code = 409
    code = "conflict"

    def __init__(self, message: str, *, fields: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or []


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class InvalidInput(DomainError):
    status_code = 400
    code = "validation_error"


class IllegalTransition(DomainError):
    status_code = 409
    code = "illegal_transition"


class IdempotencyConflict(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


class VoteRefused(IllegalTransition):
    """A vote that cannot count (the same person twice, the agent itself, a team already counted),
    each with its own code so a client can tell them apart."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code
