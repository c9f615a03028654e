"""Plain-data encoding across the trust boundary, and type-aware comparison.

The untrusted process can send any bytes it likes; :func:`decode` turns them into plain
Python values built on the trusted side (no pickle, no user classes), so nothing the
program returns can run code or lie about equality here. Unknown objects become
:class:`Opaque`, which equals nothing.
"""

from __future__ import annotations

import decimal
import fractions
import json
import math
import struct
from typing import Any

MAX_FRAME = 64 << 20
MAX_ITER_ITEMS = 100_000  # a returned iterator is consumed up to this many items


class Opaque:
    """Stand-in for a value of a type the codec does not carry; never equal to anything."""

    __slots__ = ("type_name", "text")

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name, self.text = type_name, text

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.text}>"


class Unsendable(TypeError):
    """A value only plain data can stand for (a function, an open file...)."""


def to_plain(value: Any, _depth: int = 0, strict: bool = False) -> Any:
    """Value -> JSON-able tree with tags for tuple/set/dict/bytes/complex/...

    Unknown objects become an opaque description, or raise :class:`Unsendable` when
    ``strict`` (the trusted side must not pretend to pass a value it cannot)."""
    if _depth > 200:
        raise ValueError("value nested too deeply")
    if strict:
        return _strict(value, _depth)
    t = type(value)
    if value is None or t is bool or t is str or t is float:
        return value
    if t is int:
        return value if -(1 << 62) < value < (1 << 62) else {"__t__": "int", "v": hex(value)}
    d = _depth + 1
    if t is list:
        return [to_plain(v, d) for v in value]
    if t is tuple:
        return {"__t__": "tuple", "v": [to_plain(v, d) for v in value]}
    if t is dict:
        return {"__t__": "dict", "v": [[to_plain(k, d), to_plain(v, d)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"__t__": t.__name__, "v": [to_plain(v, d) for v in value]}
    if t is bytes or t is bytearray:
        return {"__t__": "bytes", "v": bytes(value).decode("latin-1")}
    if t is complex:
        return {"__t__": "complex", "v": [value.real, value.imag]}
    if t is fractions.Fraction:
        return {"__t__": "fraction", "v": [to_plain(value.numerator, d), to_plain(value.denominator, d)]}
    if t is decimal.Decimal:
        return {"__t__": "decimal", "v": str(value)}
    if t is range:
        return {"__t__": "range", "v": [to_plain(value.start, d), to_plain(value.stop, d), to_plain(value.step, d)]}
    if hasattr(t, "__next__") and hasattr(t, "__iter__"):
        # generators, map/filter/zip objects...: the test can only iterate them, so send the items
        items = []
        for item in value:
            if len(items) >= MAX_ITER_ITEMS:
                break
            items.append(to_plain(item, d))
        return {"__t__": "iter", "v": items}
    # Subclasses and foreign scalars (numpy, Counter, OrderedDict...): carry the plain value
    # they stand for, as plain Python would compare them.
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return to_plain(base(value), d)
    if isinstance(value, dict):
        return to_plain(dict(value.items()), d)
    if isinstance(value, (set, frozenset)):
        return to_plain(set(value) if isinstance(value, set) else frozenset(value), d)
    if isinstance(value, (list, tuple)):
        return to_plain(list(value) if isinstance(value, list) else tuple(value), d)
    item = getattr(value, "tolist", None) or getattr(value, "item", None)
    if callable(item):
        return to_plain(item(), d)
    try:
        text = repr(value)[:200]
    except BaseException:  # noqa: BLE001 - any repr failure is just "unprintable"
        text = "?"
    return {"__t__": "opaque", "type": t.__name__, "v": text}


def _strict(value: Any, depth: int) -> Any:
    t = type(value)
    if t in (list, tuple, set, frozenset):
        for v in value:
            _strict(v, depth + 1)
    elif t is dict:
        for k, v in value.items():
            _strict(k, depth + 1)
            _strict(v, depth + 1)
    elif t not in (type(None), bool, int, float, str, bytes, bytearray, complex, fractions.Fraction,
                   decimal.Decimal, range):
        raise Unsendable(f"cannot pass a {t.__name__} across the sandbox boundary")
    return to_plain(value, depth)


def _hook(obj: dict[str, Any]) -> Any:
    tag = obj.get("__t__")
    if tag is None:
        return obj  # a protocol message, not a tagged value
    v = obj.get("v")
    if tag == "tuple":
        return tuple(v)
    if tag == "dict":
        return {k: val for k, val in v}
    if tag == "set":
        return set(v)
    if tag == "frozenset":
        return frozenset(v)
    if tag == "bytes":
        return v.encode("latin-1")
    if tag == "complex":
        return complex(v[0], v[1])
    if tag == "int":
        return int(v, 16)
    if tag == "fraction":
        return fractions.Fraction(int(v[0]), int(v[1]))
    if tag == "decimal":
        return decimal.Decimal(str(v))
    if tag == "range":
        return range(int(v[0]), int(v[1]), int(v[2]))
    if tag == "iter":
        return iter(list(v))
    if tag == "opaque":
        return Opaque(str(obj.get("type")), str(v))
    raise ValueError(f"unknown tag {tag!r}")



def dumps(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """Decode a frame; raises ``ValueError`` on anything malformed (never executes code)."""
    try:
        return json.loads(data, object_hook=_hook)
    except (RecursionError, TypeError, AttributeError, KeyError, IndexError, UnicodeError, ZeroDivisionError,
            ArithmeticError) as exc:
        raise ValueError(f"malformed message: {type(exc).__name__}") from None


def frame(message: Any) -> bytes:
    body = dumps(message)
    return struct.pack(">I", len(body)) + body


def equal(actual: Any, expected: Any, float_tol: float | None = None) -> bool:
    """Type-aware equality for call-based cases.

    bool is not a number here (``True != 1``); int and float compare by value (with
    ``float_tol`` when given); list and tuple are interchangeable (JSON has no tuples);
    :class:`Opaque` equals nothing.
    """
    if isinstance(actual, Opaque) or isinstance(expected, Opaque):
        return False
    ta, te = type(actual), type(expected)
    if ta is bool or te is bool:
        return ta is te and actual == expected
    if ta in (int, float) and te in (int, float):
        if float_tol is not None and (ta is float or te is float):
            if math.isnan(actual) or math.isnan(expected):
                return math.isnan(actual) and math.isnan(expected)
            return math.isclose(actual, expected, rel_tol=float_tol, abs_tol=float_tol)
        return actual == expected
    if ta in (list, tuple) and te in (list, tuple):
        return len(actual) == len(expected) and all(
            equal(a, e, float_tol) for a, e in zip(actual, expected, strict=True)
        )
    if ta is dict and te is dict:
        return actual.keys() == expected.keys() and all(
            equal(actual[k], expected[k], float_tol) for k in expected
        )
    if ta is te and ta is complex and float_tol is not None:
        return abs(actual - expected) <= float_tol * max(1.0, abs(expected))
    return ta is te and actual == expected
