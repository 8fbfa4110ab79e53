"""The API's JSON parser: DRF's, made strict (see ``exceptions_app.strict_json`` for what and why)."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from exceptions_app.errors import InvalidInput
from exceptions_app.strict_json import JsonRefused, strict_loads


class StrictJSONParser(JSONParser):
    """Refused values answer 400 ``validation_error`` naming the path; malformed JSON 400 ``malformed_json``."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read()
            # UTF-8 goes to the parser as bytes, as it arrived: no decoding into a str first.
            return strict_loads(raw if encoding.lower() in ("utf-8", "utf8") else raw.decode(encoding))
        except UnicodeDecodeError as error:
            raise ParseError(f"not {encoding} text ({error.reason} at byte {error.start})") from None
        except JsonRefused as error:
            raise InvalidInput(error.message, fields=[{"path": error.path, "message": error.message}]) from None
        except ValueError as error:
            raise ParseError(str(error)) from None
