import json
import os
import sys
import types

import pytest

from execrl.errors import DataError
from execrl.sandbox import CallCase, CheckTest, Status
from execrl.tasks import evalplus

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
HE = os.path.join(FIXTURES, "HumanEvalPlus.jsonl")
MB = os.path.join(FIXTURES, "MbppPlus.jsonl")


@pytest.fixture(scope="module")
def tasks():
    return {**evalplus.load(HE), **evalplus.load(MB)}


def test_expected_outputs_come_from_the_canonical_solution(tasks):
    add = tasks["HumanEval/1000"]
    assert add.tests == (CallCase("add_all", [[1, 2]], 3), CallCase("add_all", [[]], 0),
                         CallCase("add_all", [[5, -5, 3]], 3), CallCase("add_all", [[10**20, 1]], 10**20 + 1))
    assert add.reference.startswith(add.prompt) and add.metadata["n_base"] == 2 and add.metadata["n_plus"] == 2
    assert add.compare.float_tol is None and add.metadata["test_form"] == "call"
    assert add.limits.timeout == 3.0 and 0 <= add.metadata["reference_seconds"] < 0.5  # max(3 s, 4 x reference + 1 s)
    assert "$_CONTRACT_$" in add.metadata["contract"]
    avg = tasks["HumanEval/1001"]
    assert avg.compare.float_tol == 1e-6  # atol 0 with float outputs: evalplus's default tolerance
    assert [c.expected for c in avg.tests][:1] == [1.5]
    assert {k: t.metadata["test_form"] for k, t in tasks.items()} == {
        "HumanEval/1000": "call", "HumanEval/1001": "call", "HumanEval/1002": "check",  # find_zero: any root
        "Mbpp/3000": "call", "Mbpp/2": "check", "Mbpp/3001": "check"}  # tuple inputs; set-equality oracle
    pairs = tasks["Mbpp/2"].tests
    assert isinstance(pairs, CheckTest) and "_CASES = [([(1, 2), (3,)], (1, 2, 3))," in pairs.prelude
    assert len(evalplus.load(HE, split="base")["HumanEval/1000"].tests) == 2


def test_references_pass_and_wrong_programs_fail(pool, tasks):
    verdicts = pool.run([t.run(t.reference) for t in tasks.values()])
    assert [v.status for v in verdicts] == [Status.PASSED] * len(tasks), verdicts
    programs = {
        # wrong
        "HumanEval/1000": ("def add_all(xs):\n    return sum(xs[:2])\n", Status.FAILED),
        "HumanEval/1001": ("def average(xs):\n    return sum(xs) / len(xs) + 1e-4\n", Status.FAILED),
        "HumanEval/1002": ("def find_zero(xs):\n    return 0.5\n", Status.FAILED),
        "Mbpp/2": ("def join_pairs(a, b):\n    return list(a) + list(b)\n", Status.FAILED),  # a list is not a tuple
        "Mbpp/3001": ("def Diff(a, b):\n    return [x for x in a if x not in b]\n", Status.FAILED),
        "Mbpp/3000": ("def count_upper(s):\n    return len(s)\n", Status.FAILED),
    }
    right = {
        "HumanEval/1001": "def average(xs):\n    return sum(xs) / len(xs) + 1e-9\n",  # within 1e-6
        # another root of (x-1)(x-2)(x-3) than the bisection's: the oracle checks poly(x) == 0
        "HumanEval/1002": "def find_zero(xs):\n    return {(-6, 11, -6, 1): 3.0, (1, 2): -0.5}.get(tuple(xs), 2 ** (1 / 3))\n",
        "Mbpp/3001": "def Diff(a, b):\n    return sorted(set(a) ^ set(b), reverse=True)\n",  # any order
    }
    runs = [tasks[k].run(p) for k, (p, _) in programs.items()] + [tasks[k].run(p) for k, p in right.items()]
    got = [v.status for v in pool.run(runs)]
    assert got == [s for _, s in programs.values()] + [Status.PASSED] * len(right), got


def _write(tmp_path, rows):
    p = tmp_path / "plus.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(p)


def test_malformed_rows_and_failing_canonical_solutions(tmp_path):
    good = json.loads(open(HE).readline())
    cases = [
        ({k: v for k, v in good.items() if k != "atol"}, "line 1: missing field 'atol'"),
        ({**good, "base_input": [1, 2]}, "line 1: 'base_input' and 'plus_input' must be lists of argument lists"),
        ({**good, "plus_input": "[]"}, "line 1: field 'plus_input' must be list"),
        ({**good, "canonical_solution": "    return 1 / 0\n"}, "line 1: the canonical solution failed on its inputs: ZeroDivisionError"),
        ({**good, "canonical_solution": "    import time; time.sleep(30)\n"}, "line 1: the canonical solution took over 0.5 s"),
        ({**good, "canonical_solution": "    return object()\n"}, "line 1: the canonical solution returns values that are not plain data"),
        ({**good, "task_id": "Mbpp/2", "base_input": [[1, 2]]}, "line 1: malformed MBPP\\+ input"),
    ]
    for bad, message in cases:
        with pytest.raises(DataError, match=message):
            evalplus.load(_write(tmp_path, [bad]), timeout=0.5)
    with pytest.raises(DataError, match="line 2: duplicate task_id 'HumanEval/1000'"):
        evalplus.load(_write(tmp_path, [good, good]))
    with pytest.raises(DataError, match="unknown evalplus split 'extra'"):
        evalplus.load(HE, split="extra")


def test_mbpp_plus_inputs_are_rebuilt_as_evalplus_does():
    assert evalplus.mbpp_input(2, [[1, 2], [3]]) == [(1, 2), (3,)]
    assert evalplus.mbpp_input(63, [[[1, 2], [3, 4]]]) == [[(1, 2), (3, 4)]]
    assert evalplus.mbpp_input(115, [[[1], []]]) == [[{1}, {}]]
    assert evalplus.mbpp_input(124, ["1", "2+3j"]) == [1.0, 2 + 3j]
    assert evalplus.mbpp_input(580, [[1, [2, [3]]]]) == [(1, (2, (3,)))]
    assert evalplus.mbpp_input(722, [{"a": [1, 2]}, 3]) == [{"a": (1, 2)}, 3]
    assert evalplus.mbpp_input(3000, [[1, 2]]) == [[1, 2]]


def test_hugging_face_rows_run_their_own_test_program(pool, monkeypatch):
    he_row = {"task_id": "HumanEval/7", "prompt": "def twice(x):\n    \"\"\"Double x.\"\"\"\n", "canonical_solution": "    return 2 * x\n",
              "entry_point": "twice", "test": "def check(candidate):\n    for x in [1, 5]:\n        assert candidate(x) == 2 * x\n"}
    mb_row = {"task_id": 8, "prompt": "Write a function to negate a number.", "code": "def neg(x):\n    return -x\n",
              "source_file": "f", "test_imports": [], "test_list": ["assert neg(1) == -1"],
              "test": "inputs = [[1], [-2]]\nresults = [-1, 2]\nfor inp, exp in zip(inputs, results):\n    assert neg(*inp) == exp\n"}
    rows = {"evalplus/humanevalplus": [he_row], "evalplus/mbppplus": [mb_row]}
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda name, config, split: rows[name]))
    tasks = {**evalplus.load(), **evalplus.load("evalplus/mbppplus")}
    assert list(tasks) == ["HumanEval/7", "Mbpp/8"]
    assert tasks["Mbpp/8"].entry_point == "neg" and tasks["Mbpp/8"].prompt.startswith('"""\nWrite a function to negate')
    verdicts = pool.run([t.run(t.reference) for t in tasks.values()] + [tasks["Mbpp/8"].run("def neg(x):\n    return x\n")])
    assert [v.status for v in verdicts] == [Status.PASSED, Status.PASSED, Status.FAILED]
