"""JSON as Tollgate accepts it from agents and operators: what PostgreSQL can store and every later
step (fingerprint, CEL, JSON Schema, rendering) can process.

Python's ``json`` accepts things that break later, far from the request that sent them:
- ``NaN``/``Infinity`` literals and numbers like ``1e400`` (read as infinity): jsonb refuses them;
- ``\\u0000`` in a string or a key: PostgreSQL text and jsonb cannot hold it;
- a lone surrogate such as ``\\ud800``: it cannot be encoded as UTF-8 to be stored;
- nesting thousands of levels deep: the recursive steps after parsing overflow the stack;
- integers outside the 64-bit range (``10**400``): CEL, in which policies are written, has 64-bit
  integers only and cannot even be handed such a value (and JavaScript clients cannot read it);
- duplicate keys, silently resolved to the last one: a proxy or validator that kept the first
  would see a different document than Tollgate (``{"confidence": 0.1, "confidence": 0.99}``).
All of these are refused here with the path of the offending value, so the caller gets a 400
naming the field instead of a 500 from the database.

Cost on the intake path: orjson parses (in C, several times faster than the json module with
Python hooks), and it already refuses NaN/Infinity, numbers that overflow a double and lone
surrogates. What it would let through is found without a Python walk of the values:
- duplicate keys: each key/value pair puts one ``:`` in the text, and a colon inside a string is
  written as itself (only ``\\u003a`` escapes one, and text holding that takes the slow path), so
  the text has as many colons as orjson's re-encoding of what it parsed unless a key repeated;
- integers past 64 bits (orjson reads them as floats): only text with a run of 19 digits can hold
  one, and such text takes the slow path.
Anything refused or doubtful goes to the stdlib parser with hooks (``_strict_loads_stdlib``), which
raises the refusal with its path. Depth is read from orjson's indented re-encoding (the one the colons
are counted in); the walk that finds the path runs only past the limit. The scan of every string runs only when the raw
text holds a ``\\u0000`` or ``\\ud...`` escape (JSON encoders write those characters escaped, so
their absence from the text proves their absence from the values).
"""

import json
import math
import re

import orjson

MAX_DEPTH = 64
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """Valid JSON that Tollgate does not accept; ``path`` names the value (``output.lines[2]``)."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.message = message
        self.path = path


# Hooks of the strict pass: they only raise. The second pass (_locate) finds the path and says why.


def _object(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise JsonRefused("duplicate key")
    return obj


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonRefused("float out of range")
    return value


def _int(text: str) -> int:
    value = int(text)
    if len(text) > 18 and not INT_MIN <= value <= INT_MAX:
        raise JsonRefused("integer out of range")
    return value


def _constant(name: str):
    raise JsonRefused(f"{name} literal")


class _Culprit:
    """Left by the lenient pass where the strict one refused, with the reason."""

    def __init__(self, message: str, key: str | None = None):
        self.message = message
        self.key = key


def _lenient_object(pairs: list):
    seen = set()
    for key, _value in pairs:
        if key in seen:
            return _Culprit("duplicate key: each key may appear once in an object", key)
        seen.add(key)
    return dict(pairs)


def _lenient_float(text: str):
    value = float(text)
    return _Culprit(f"the number {text[:40]} is too large to store") if math.isinf(value) else value


def _lenient_int(text: str):
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else _Culprit("the integer is outside the 64-bit range")


def _lenient_constant(name: str):
    return _Culprit(f"{name} is not a number JSON allows")


def _printable(key: str) -> str:
    """A key as it can be shown in an error: NUL and lone surrogates escaped (they cannot be encoded)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _child_path(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = _printable(key)
    return f"{path}.{key}" if path else key


def _refusal(path: str, message: str) -> JsonRefused:
    shown = path if len(path) <= 80 else f"{path[:80]}…"
    return JsonRefused(f"{shown or 'body'}: {message}", path)


def _locate(text: str) -> JsonRefused:
    """Parse again leniently, leaving a _Culprit where the strict pass refused, and find its path."""
    value = json.loads(
        text,
        object_pairs_hook=_lenient_object,
        parse_float=_lenient_float,
        parse_int=_lenient_int,
        parse_constant=_lenient_constant,
    )
    stack = [(value, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Culprit):
            return _refusal(_child_path(path, value.key) if value.key is not None else path, value.message)
        entries = value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
        stack.extend((child, _child_path(path, key)) for key, child in entries)
    return JsonRefused("refused")  # not reached: the strict pass refused something


def _deeper_than_limit(value) -> bool:
    """A level at a time over containers only, without recursion."""
    level = [value] if type(value) in (dict, list) else []
    depth = 0
    values = dict.values
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True
        below = []
        for container in level:
            for child in values(container) if type(container) is dict else container:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
    return False


def _too_deep_path(value) -> str:
    """The path to the first container past the limit (only called once the limit is known to be passed)."""
    stack = [(value, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path
        entries = value.items() if type(value) is dict else enumerate(value)
        stack.extend(
            (child, _child_path(path, key), depth + 1) for key, child in entries if type(child) in (dict, list)
        )
    return ""


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "the text contains a NUL character (\\u0000), which cannot be stored"
    if _SURROGATE.search(text):
        return "the text contains a lone UTF-16 surrogate (such as \\ud800), which is not a character"
    return None


def _holds_unstorable_string(value) -> bool:
    """Whether any string or key holds NUL or a lone surrogate: the fast pass, without paths."""
    stack = [value]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            if "\x00" in value or (not value.isascii() and _SURROGATE.search(value)):
                return True
        elif kind is dict:
            for key in value:
                if "\x00" in key or (not key.isascii() and _SURROGATE.search(key)):
                    return True
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
    return False


def _unstorable_string(value) -> JsonRefused:
    """The refusal naming the first string or key holding NUL or a lone surrogate (the slow pass)."""
    stack = [(value, "")]
    while stack:
        value, path = stack.pop()
        if type(value) is str:
            problem = _string_problem(value)
            if problem:
                return _refusal(path, problem)
        elif type(value) is dict:
            for key, child in value.items():
                child_path = _child_path(path, key)
                problem = _string_problem(key)
                if problem:
                    return _refusal(child_path, f"the key {problem.removeprefix('the text ')}")
                stack.append((child, child_path))
        elif type(value) is list:
            stack.extend((child, _child_path(path, index)) for index, child in enumerate(value))
    return JsonRefused("refused")  # not reached: the fast pass found one


# Text the fast path cannot vouch for: a run of 19 digits (maybe an integer past 64 bits), found
# as 19 zeros once every digit is a zero (two passes in C, where a regular expression took longer
# than parsing), or an escaped colon (it would hide a duplicate key from the colon count).
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
_ESCAPED_COLON = b"\\u003"
# In orjson's indented output every element sits on its own line, two spaces deeper per container, so
# a container nested past MAX_DEPTH is on a line indented at least this far.
_DEEP_INDENT = b"\n" + b" " * (2 * MAX_DEPTH)


def strict_loads(text: str | bytes):
    """Parse ``text`` (str, or UTF-8 bytes); raise JsonRefused (with a path), UnicodeDecodeError
    (bytes that are not UTF-8) or ValueError (malformed JSON)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _ESCAPED_COLON in data or _LONG_NUMBER in data.translate(_DIGITS_AS_ZEROS):
        return _strict_loads_stdlib(_as_text(text))
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _strict_loads_stdlib(_as_text(text))  # refuses with the path and the reason
    shown = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    if data.count(b":") != shown.count(b":"):
        return _strict_loads_stdlib(_as_text(text))  # a duplicate key
    if _DEEP_INDENT in shown and _deeper_than_limit(value):
        raise _refusal(_too_deep_path(value), f"nested deeper than {MAX_DEPTH} levels")
    if (b"\\u0000" in data or b"\\ud" in data or b"\\uD" in data) and _holds_unstorable_string(value):
        raise _unstorable_string(value)
    return value


def _as_text(text: str | bytes) -> str:
    return text if isinstance(text, str) else text.decode("utf-8")


def _strict_loads_stdlib(text: str):
    """The json module with hooks that refuse: slower, and the judge of everything the fast path doubts."""
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_float=_float, parse_int=_int, parse_constant=_constant
        )
    except JsonRefused:
        try:
            refusal = _locate(text)
        except RecursionError:
            refusal = _refusal("", f"nested deeper than {MAX_DEPTH} levels")
        raise refusal from None
    except RecursionError:
        raise _refusal("", f"nested deeper than {MAX_DEPTH} levels") from None
    if _deeper_than_limit(value):
        path = _too_deep_path(value)
        raise _refusal(path, f"nested deeper than {MAX_DEPTH} levels")
    if ("\\u0000" in text or "\\ud" in text or "\\uD" in text) and _holds_unstorable_string(value):
        raise _unstorable_string(value)
    return value
