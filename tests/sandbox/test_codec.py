import math

import pytest

from execrl.sandbox import _codec
from execrl.sandbox._codec import Opaque, equal


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -5, 2**100, 1.5, float("inf"), "s", b"\x00\xff", [1, [2]], (1, (2,)), {"a": 1, 2: (3,)},
     {1, 2}, frozenset({3}), 1 + 2j, [(), {}, set()]],
)
def test_round_trip_is_exact_including_types(value):
    back = _codec.loads(_codec.dumps(_codec.to_plain(value)))
    assert back == value and type(back) is type(value)


def test_nan_round_trips():
    assert math.isnan(_codec.loads(_codec.dumps(_codec.to_plain(float("nan")))))


def test_lying_subclass_is_carried_as_its_plain_value():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    back = _codec.loads(_codec.dumps(_codec.to_plain(Liar(5))))
    assert type(back) is int and back == 5 and back != 3


def test_unknown_objects_become_opaque_and_equal_nothing():
    back = _codec.loads(_codec.dumps(_codec.to_plain(object())))
    assert isinstance(back, Opaque)
    assert back != back and not (back == 1) and not (1 == back)


@pytest.mark.parametrize("data", [b"{", b'{"__t__": "nope", "v": 1}', b'{"__t__": "set", "v": [[1]]}', b"[" * 100000])
def test_malformed_frames_raise_value_error(data):
    with pytest.raises(ValueError):
        _codec.loads(data)


def test_equal_is_type_aware():
    assert equal(1, 1.0) and not equal(True, 1) and not equal(1, True)
    assert equal([1, (2, 3)], [1, [2, 3]])  # JSON has no tuples
    assert not equal("1", 1) and not equal(None, 0) and not equal([1], [1, 2])
    assert equal({"a": [1.0]}, {"a": [1]}) and not equal({"a": 1}, {"b": 1})


def test_equal_float_tolerance():
    assert not equal(0.1 + 0.2, 0.3)
    assert equal(0.1 + 0.2, 0.3, float_tol=1e-9)
    assert not equal(1.0, 1.1, float_tol=1e-6)
    assert equal(float("nan"), float("nan"), float_tol=1e-6) and not equal(float("nan"), 1.0, float_tol=1e-6)
