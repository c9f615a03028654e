import base64
import json
import os
import pickle
import zlib

import pytest

from execrl.errors import DataError
from execrl.sandbox import CallCase, Status, StdioCase
from execrl.tasks import livecodebench

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "livecodebench.jsonl")

# LiveCodeBench ships no solutions. These programs solve the fixture problems; the functional
# ones define the method name at module level (see test_solution_class_methods_*).
REFERENCES = {
    "abc900_a": "input()\nprint(max(map(int, input().split())))\n",
    "1900A": "print(input()[::-1])\n",
    "lcb/3900": "def addTwo(a, b):\n    return a + b\n",
    "lcb/3901": "def withPrefix(words, prefix):\n    return [w for w in words if w.startswith(prefix)]\n",
}


def test_stdin_and_functional_tests_plain_and_packed():
    tasks = livecodebench.load(FIXTURE)
    assert list(tasks) == ["abc900_a", "1900A", "lcb/3900", "lcb/3901"]
    stdin = tasks["1900A"]  # private tests packed as base64(zlib(pickle(json)))
    assert stdin.public_tests == (StdioCase("abc\n", "cba\n"),)
    assert stdin.tests == stdin.public_tests + (StdioCase("x\n", "x\n"), StdioCase("racecar\n", "racecar\n"), StdioCase("ab\n", "ba\n"))
    add = tasks["lcb/3900"]
    assert add.tests == (CallCase("addTwo", [1, 2], 3), CallCase("addTwo", [-1, 1], 0), CallCase("addTwo", [10, 20], 30))
    assert add.entry_point == "addTwo" and add.metadata["call_style"] == "method"
    assert "class Solution:\n    def addTwo" in add.prompt and add.prompt.startswith("### Question:\nReturn the sum")
    words = tasks["lcb/3901"]
    assert words.tests[2] == CallCase("withPrefix", [["x\ny", "xz"], "x"], ["x\ny", "xz"])  # newline inside a JSON arg
    m = tasks["abc900_a"].metadata
    assert (m["platform"], m["contest_date"], m["test_form"], m["source"]) == ("atcoder", "2023-05-06", "stdio", "livecodebench.jsonl")
    assert "standard input" in tasks["abc900_a"].prompt and tasks["abc900_a"].reference is None


def test_contest_date_window():
    assert list(livecodebench.load(FIXTURE, since="2024-01-01")) == ["1900A", "lcb/3900"]
    assert list(livecodebench.load(FIXTURE, until="2023-09-15")) == ["abc900_a", "lcb/3901"]  # inclusive
    assert list(livecodebench.load(FIXTURE, since="2023-06-01", until="2024-01-10")) == ["1900A", "lcb/3901"]
    with pytest.raises(DataError, match="no problems between 2025-01-01 and now"):
        livecodebench.load(FIXTURE, since="2025-01-01")
    with pytest.raises(DataError, match="since='May 2024' is not an ISO date"):
        livecodebench.load(FIXTURE, since="May 2024")


def test_references_pass_and_wrong_programs_fail(pool):
    tasks = livecodebench.load(FIXTURE)
    verdicts = pool.run([tasks[k].run(p) for k, p in REFERENCES.items()])
    assert [v.status for v in verdicts] == [Status.PASSED] * 4, verdicts
    wrong = pool.run([tasks["abc900_a"].run("input()\nprint(min(map(int, input().split())))\n"),
                      tasks["1900A"].run("print(input())\n"),  # passes the palindromes only
                      tasks["lcb/3900"].run("def addTwo(a, b):\n    return a - b\n"),
                      tasks["lcb/3901"].run("def withPrefix(words, prefix):\n    return words\n")])
    assert [v.status for v in wrong] == [Status.FAILED] * 4
    assert wrong[1].tests_passed == 2 and wrong[1].tests_total == 4


def test_solution_class_methods_are_called_like_livecodebench_does(pool):
    task = livecodebench.load(FIXTURE)["lcb/3900"]
    [v] = pool.run([task.run("class Solution:\n    def addTwo(self, a: int, b: int) -> int:\n        return a + b\n")])
    assert v.passed, v


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _pack(obj) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(obj))).decode()


def test_private_tests_unpickle_plain_data_only():
    tests = [{"input": "1\n", "output": "1\n", "testtype": "stdin"}]
    assert livecodebench.decode_private(json.dumps(tests)) == tests
    assert livecodebench.decode_private(_pack(json.dumps(tests))) == tests
    assert livecodebench.decode_private(_pack(tests)) == tests  # a list pickled directly is plain data too
    with pytest.raises(DataError, match="refusing to load posix.system"):
        livecodebench.decode_private(_pack(Evil()))
    with pytest.raises(DataError, match="refusing to load collections.OrderedDict"):
        import collections

        livecodebench.decode_private(_pack(collections.OrderedDict(a=1)))
    with pytest.raises(DataError, match="pickled int, not JSON text"):
        livecodebench.decode_private(_pack(3))
    with pytest.raises(DataError, match="neither JSON nor base64 zlib pickle"):
        livecodebench.decode_private("not json, not base64!")
    with pytest.raises(DataError, match="neither JSON nor base64 zlib pickle"):
        livecodebench.decode_private(base64.b64encode(b"not zlib").decode())
    with pytest.raises(DataError, match="must be a list of tests, not dict"):
        livecodebench.decode_private(json.dumps({"input": "1"}))


def test_bad_rows_name_the_line(tmp_path):
    rows = [json.loads(line) for line in open(FIXTURE)]
    good, functional = rows[0], rows[2]
    cases = [
        ({k: v for k, v in good.items() if k != "contest_date"}, "line 2: missing field 'contest_date'"),
        ({**good, "contest_date": "yesterday"}, "line 2: contest_date 'yesterday' is not an ISO date"),
        ({**good, "public_test_cases": "[{"}, "line 2: public_test_cases is not valid JSON"),
        ({**good, "private_test_cases": "%%%"}, "line 2: private_test_cases is neither JSON nor base64"),
        ({**good, "metadata": "[]"}, "line 2: metadata must be a JSON object"),
        ({**functional, "metadata": "{}"}, "line 2: functional tests need metadata func_name"),
        ({**functional, "public_test_cases": json.dumps([{"input": "1", "output": "2", "testtype": "stdin"}])},
         "line 2: tests must all be 'stdin' or all 'functional'"),
        ({**functional, "public_test_cases": json.dumps([{"input": "1\n{", "output": "2", "testtype": "functional"}])},
         "line 2: test 0 input is not valid JSON"),
        ({**good, "public_test_cases": json.dumps([{"input": 1, "output": "2", "testtype": "stdin"}])},
         "line 2: test 0 needs string 'input' and 'output'"),
        (good, "line 2: duplicate question_id 'abc900_a'"),
    ]
    for bad, message in cases:
        p = tmp_path / "lcb.jsonl"
        p.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(DataError, match=message):
            livecodebench.load(str(p))
