import ast
import doctest
import json
from collections import Counter

import pytest

from execrl.errors import DataError
from execrl.sandbox import CallCase, Status
from execrl.tasks import basic


@pytest.fixture(scope="module")
def tasks():
    return basic.load()


def _canon(value):
    """JSON text of a value: tuples read like lists, and True, 1 and 1.0 stay different."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _function(source, name):
    tree = ast.parse(source)
    fn = tree.body[-1]
    assert isinstance(fn, ast.FunctionDef) and fn.name == name
    return fn


def _examples(task):
    """(args, expected) of every ``>>>`` example in the prompt's docstring."""
    doc = ast.get_docstring(_function(task.prompt, task.entry_point), clean=False)
    out = []
    for ex in doctest.DocTestParser().get_examples(doc):
        call = ast.parse(ex.source, mode="eval").body
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name), (task.task_id, ex.source)
        assert call.func.id == task.entry_point and not call.keywords, (task.task_id, ex.source)
        args = [ast.literal_eval(a) for a in call.args]
        want = ex.want.strip()
        out.append((args, ast.literal_eval(want) if want else None))
    return out


def test_bundled_set_shape(tasks):
    assert len(tasks) >= 150
    with open(basic.bundled_path(), encoding="utf-8") as f:
        ids = [json.loads(line)["task_id"] for line in f if line.strip()]
    assert len(ids) == len(set(ids)) == len(tasks)
    assert all(i.startswith("execrl-basic/") for i in ids)
    assert len({t.entry_point for t in tasks.values()}) == len(tasks)
    mix = Counter(t.metadata["difficulty"] for t in tasks.values())
    assert mix["easy"] > mix["medium"] > mix["hard"] > 0
    for t in tasks.values():
        assert t.metadata["source"] == "execrl-basic" and t.metadata["tags"]
        assert all(isinstance(c, CallCase) and c.fn_name == t.entry_point for c in t.tests + t.public_tests)
        assert 6 <= len(t.tests) <= 12, t.task_id
        assert len(t.public_tests) >= 2, t.task_id
        if any(type(c.expected) is float for c in t.tests):
            assert t.compare.float_tol is not None, t.task_id


def test_prompts_end_with_the_docstring_and_references_extend_them(tasks):
    for t in tasks.values():
        fn = _function(t.prompt, t.entry_point)
        assert len(fn.body) == 1 and ast.get_docstring(fn), t.task_id
        assert t.prompt.endswith('"""\n'), t.task_id
        assert t.reference.startswith(t.prompt), t.task_id
        body = _function(t.reference, t.entry_point).body
        assert len(body) > 1, t.task_id  # something after the docstring


def test_public_tests_are_exactly_the_docstring_examples(tasks):
    for t in tasks.values():
        examples = [(_canon(a), _canon(e)) for a, e in _examples(t)]
        public = [(_canon(c.args), _canon(c.expected)) for c in t.public_tests]
        assert examples == public, t.task_id
        public_args = {a for a, _ in public}
        hidden_args = [_canon(c.args) for c in t.tests]
        assert not public_args & set(hidden_args), t.task_id
        assert len(set(hidden_args)) == len(hidden_args), t.task_id
        # a constant answer must not pass the hidden tests
        assert len({_canon(c.expected) for c in t.tests}) >= 2, t.task_id


def test_references_pass_and_stubs_fail(tasks, pool):
    ordered = list(tasks.values())
    runs = [t.run(t.reference) for t in ordered]
    runs += [t.public_run(t.reference) for t in ordered]
    runs += [t.run(t.prompt + "    pass\n") for t in ordered]
    verdicts = pool.run(runs)
    n = len(ordered)
    reference_failures = [
        (t.task_id, which, v.status.value, v.detail or [o.detail for o in v.tests if o.status is not Status.PASSED])
        for which, chunk in (("hidden", verdicts[:n]), ("public", verdicts[n:2 * n]))
        for t, v in zip(ordered, chunk, strict=True)
        if not v.passed
    ]
    assert not reference_failures
    for t, v in zip(ordered, verdicts[n:2 * n], strict=True):
        assert v.tests_total == len(t.public_tests), t.task_id
    vacuous = [t.task_id for t, v in zip(ordered, verdicts[2 * n:], strict=True) if v.passed]
    assert not vacuous
    assert all(v.status is Status.FAILED for v in verdicts[2 * n:])


GOOD = {
    "task_id": "T/0",
    "entry_point": "inc",
    "difficulty": "easy",
    "tags": ["math"],
    "prompt": 'def inc(x: float) -> float:\n    """Add one.\n\n    >>> inc(1)\n    2\n    """\n',
    "reference": 'def inc(x: float) -> float:\n    """Add one.\n\n    >>> inc(1)\n    2\n    """\n    return x + 1\n',
    "public_tests": [{"args": [1], "expected": 2}],
    "hidden_tests": [{"args": [0.5], "expected": 1.5}, {"args": [[1]], "expected": [1, 2], "expected_tuple": True}],
    "float_tol": 1e-6,
}


def _write(tmp_path, *rows):
    path = tmp_path / "basic.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_small_file_loads(tmp_path):
    task = basic.load(_write(tmp_path, GOOD))["T/0"]
    assert task.tests == (CallCase("inc", [0.5], 1.5), CallCase("inc", [[1]], (1, 2)))
    assert task.public_tests == (CallCase("inc", [1], 2),)
    assert task.compare.float_tol == 1e-6 and task.reference.endswith("return x + 1\n")
    assert task.metadata == {"difficulty": "easy", "tags": ["math"], "source": "execrl-basic"}


def _without(key):
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (_without("hidden_tests"), "missing field 'hidden_tests'"),
        ({**GOOD, "task_id": "T/1", "prompt": 3}, "'prompt' must be a non-empty string"),
        ({**GOOD, "task_id": "T/1", "tags": "math"}, r"\(T/1\): field 'tags' must be a list of strings"),
        ({**GOOD, "task_id": "T/1", "difficulty": "trivial"}, r"\(T/1\): difficulty must be one of"),
        ({**GOOD, "task_id": "T/1", "float_tol": "small"}, r"\(T/1\): float_tol must be"),
        ({**GOOD, "task_id": "T/1", "reference": "return 1\n"}, "reference does not start with the prompt"),
        ({**GOOD, "task_id": "T/1", "hidden_tests": []}, r"\(T/1\): hidden_tests is empty"),
        ({**GOOD, "task_id": "T/1", "hidden_tests": [{"args": 1, "expected": 2}]}, r"hidden_tests\[0\]: 'args'"),
        ({**GOOD, "task_id": "T/1", "public_tests": [{"args": [1]}]}, r"public_tests\[0\] must be an object"),
        ({**GOOD, "task_id": "T/1", "hidden_tests": [{"args": [0], "expected": 1}, {"args": [1], "expected": 2}]},
         r"\(T/1\): hidden test 1 repeats public test 0"),
        (GOOD, r"\(T/0\): duplicate task_id 'T/0'"),
        ("{not json", "not valid JSON"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, second, message):
    path = _write(tmp_path, GOOD, second)
    with pytest.raises(DataError, match=message) as err:
        basic.load(path)
    assert str(err.value).startswith(f"{path} line 2")
    assert "\n" not in str(err.value)


def test_empty_or_missing_file(tmp_path):
    with pytest.raises(DataError, match="no problems"):
        basic.load(_write(tmp_path))
    with pytest.raises(DataError, match="no such file"):
        basic.load(str(tmp_path / "absent.jsonl"))
