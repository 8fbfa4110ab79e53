"""Template context for every console page."""

from datetime import datetime

from django.utils import timezone

UNDO_OFFER = "tollgate_undo"


def undo_offer(request) -> dict:
    """The decision just made, with its Undo, on the page that follows it (once, while it can be undone)."""
    session = getattr(request, "session", None)
    if session is None or UNDO_OFFER not in session:
        return {}
    offer = session.pop(UNDO_OFFER)
    return {"undo_offer": offer, "undo_open": datetime.fromisoformat(offer["until"]) > timezone.now()}
