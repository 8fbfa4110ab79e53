"""strict_loads: the fast path (orjson) accepts exactly what the stdlib path with refusing hooks accepts, returns
the same values, and every refusal still names its path."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exceptions_app.strict_json import MAX_DEPTH, JsonRefused, _strict_loads_stdlib, strict_loads

REFUSED = [
    ('{"confidence": 0.1, "confidence": 0.99}', "confidence", "duplicate key"),
    ('{"a": {"b": 1, "b": 2}}', "a.b", "duplicate key"),
    ('{"a": "x:y", "b": "http://h:1", "b": 2}', "b", "duplicate key"),
    ('{"a\\u003a": 1, "a:": 2}', "a:", "duplicate key"),  # an escaped colon must not hide the repeat
    ('{"n": 9223372036854775808}', "n", "64-bit"),
    ('{"n": -9223372036854775809}', "n", "64-bit"),
    ('{"n": 18446744073709551616}', "n", "64-bit"),
    ('{"n": 100000000000000000000000000000000000000}', "n", "64-bit"),
    ('{"x": 1e400}', "x", "too large"),
    ('{"x": [NaN]}', "x[0]", "NaN"),
    ('{"x": Infinity}', "x", "Infinity"),
    ('{"s": "a\\u0000b"}', "s", "NUL"),
    ('{"k\\u0000": 1}', "k\\u0000", "NUL"),
    ('{"s": ["\\ud800"]}', "s[0]", "surrogate"),
    ('{"s": "\\udc00"}', "s", "surrogate"),
    ('{"d": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}", "d", "deeper"),
    ('{"k": ' * (MAX_DEPTH + 1) + "{}" + "}" * (MAX_DEPTH + 1), "k.k", "deeper"),
    ("[" * MAX_DEPTH + "{}" + "]" * MAX_DEPTH, "[0][0]", "deeper"),
]


@pytest.mark.parametrize(("text", "path", "reason"), REFUSED)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_refusals_name_the_path_on_either_input_type(text, path, reason, as_bytes):
    with pytest.raises(JsonRefused) as refused:
        strict_loads(text.encode() if as_bytes else text)
    assert refused.value.path.startswith(path)
    assert reason in refused.value.message


@pytest.mark.parametrize("text", ["[1, 2", "", "{'a': 1}", '{"a": 1} x', "\ufeff{}"])
def test_malformed_json_is_a_value_error(text):
    with pytest.raises(ValueError, match=r"[Ee]xpect|[Ee]xtra|BOM|[Uu]nexpected|delimiter") as error:
        strict_loads(text.encode())
    assert not isinstance(error.value, JsonRefused)


def test_bytes_that_are_not_utf8_raise_unicode_decode_error():
    with pytest.raises(UnicodeDecodeError):
        strict_loads(b'{"a": "\xff"}')


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 9223372036854775807, "m": -9223372036854775808, "id": "1234567890123456789012"}',
        '{"a": "x:y:z", "b": {"c": "d:e"}, "url": "http://127.0.0.1:9/hook"}',
        '{"e": "caf\\u00e9 \\ud83d\\ude00", "f": 1.5e-400, "g": 0.1, "h": 1e16}',
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        '{"k": ' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1),
        "[" * (MAX_DEPTH - 2) + "[1, {}]" + "]" * (MAX_DEPTH - 2),
        '"plain"',
    ],
)
def test_accepted_values_equal_the_stdlib_paths(text):
    assert strict_loads(text.encode()) == _strict_loads_stdlib(text)
    assert strict_loads(text) == json.loads(text)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json, st.booleans())
def test_fast_and_stdlib_paths_agree(value, ensure_ascii):
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    data = text.encode("utf-8", "surrogatepass")
    try:
        expected = _strict_loads_stdlib(text)
    except JsonRefused as refusal:
        expected = refusal
    if isinstance(expected, JsonRefused):
        with pytest.raises(JsonRefused) as refused:
            strict_loads(data)
        assert refused.value.path == expected.path
    else:
        assert strict_loads(data) == expected
