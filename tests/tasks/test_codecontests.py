import json
import logging
import os

import pytest

from execrl.errors import DataError
from execrl.sandbox import Limits, Status, StdioCase
from execrl.tasks import codecontests

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
JSONL = os.path.join(FIXTURES, "code_contests.jsonl")
PARQUET = os.path.join(FIXTURES, "code_contests.parquet")


def test_tests_limits_and_python3_references(caplog):
    with caplog.at_level(logging.WARNING, logger="execrl.tasks.codecontests"):
        tasks = codecontests.load(JSONL)
    assert "skipped 1 CodeContests problems without private or generated tests" in caplog.text
    assert list(tasks) == ["9000_A. Pair Sum", "9000_B. Word Flip", "9000_C. Spaced Out"]
    pair = tasks["9000_A. Pair Sum"]
    assert pair.public_tests == (StdioCase("2\n1 2\n3 4\n", "3\n7\n"),)
    assert pair.tests[0] == StdioCase("1\n10 -10\n", "0\n") and len(pair.tests) == 3  # private + generated
    assert pair.limits == Limits(timeout=1.5, memory_mb=256)
    assert pair.reference.startswith("t = int(input())")  # language 3 (PYTHON3), not the C++ one
    assert pair.metadata["contest_source"] == "CODEFORCES" and pair.metadata["n_generated"] == 2
    flip = tasks["9000_B. Word Flip"]
    assert flip.limits == Limits(timeout=2.0, memory_mb=256)  # no limits given: defaults
    assert flip.reference == "print(*input().split()[::-1])\n"  # not the Python 2 one
    assert tasks["9000_C. Spaced Out"].limits == Limits(timeout=10.0, memory_mb=64)  # capped, floored


def test_parquet_and_jsonl_give_the_same_tasks():
    pytest.importorskip("pyarrow")
    a, b = codecontests.load(JSONL), codecontests.load(PARQUET)
    assert [(t.task_id, t.tests, t.public_tests, t.reference, t.limits) for t in a.values()] == \
           [(t.task_id, t.tests, t.public_tests, t.reference, t.limits) for t in b.values()]


def test_references_pass_and_wrong_programs_fail(pool):
    tasks = codecontests.load(JSONL)
    verdicts = pool.run([t.run(t.reference) for t in tasks.values()])
    assert [v.status for v in verdicts] == [Status.PASSED] * 3, verdicts  # C prints "1  2  " for "1 2"
    public = pool.run([t.public_run(t.reference) for t in tasks.values()])
    assert all(v.passed for v in public)
    wrong = pool.run([tasks["9000_A. Pair Sum"].run("print(0)\n"),
                      tasks["9000_B. Word Flip"].run("print(input())\n"),
                      tasks["9000_C. Spaced Out"].run("import time\ntime.sleep(60)\n", limits=Limits(timeout=0.5))])
    assert [v.status for v in wrong] == [Status.FAILED, Status.FAILED, Status.TIMEOUT]


def test_bad_rows_name_the_line(tmp_path):
    good = json.loads(open(JSONL).readline())
    cases = [
        ({k: v for k, v in good.items() if k != "private_tests"}, "line 2: missing field 'private_tests'"),
        ({**good, "public_tests": {"input": ["1"], "output": []}}, "line 2: public_tests must hold 'input' and 'output' lists"),
        ({**good, "generated_tests": {"input": [1], "output": ["1"]}}, "line 2: generated_tests inputs and outputs must be strings"),
        ({**good, "solutions": {"language": [3], "solution": []}}, "line 2: 'solutions' has 1 languages for 0 solutions"),
        ({**good, "time_limit": 2}, "line 2: 'time_limit' must be"),
        ({**good, "memory_limit_bytes": "256MB"}, "line 2: 'memory_limit_bytes' must be a number"),
        (good, "line 2: duplicate name '9000_A. Pair Sum'"),
    ]
    for bad, message in cases:
        p = tmp_path / "cc.jsonl"
        p.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(DataError, match=message):
            codecontests.load(str(p))
    p.write_text(json.dumps({**good, "private_tests": {"input": [], "output": []}, "generated_tests": {}}) + "\n")
    with pytest.raises(DataError, match=r"no usable problems \(1 without hidden tests\)"):
        codecontests.load(str(p))
