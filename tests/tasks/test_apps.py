import json
import logging
import os
import shutil

import pytest

from execrl.errors import DataError
from execrl.sandbox import CallCase, Status, StdioCase
from execrl.tasks import apps

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "apps.jsonl")


def test_call_based_and_standard_input_problems(caplog):
    with caplog.at_level(logging.WARNING, logger="execrl.tasks.apps"):
        tasks = apps.load(FIXTURE)
    assert "skipped 2 APPS rows without usable input_output" in caplog.text  # rows 4 and 5
    assert list(tasks) == ["apps/0", "apps/1", "apps/2", "apps/3"]
    assert tasks["apps/0"].tests[0] == StdioCase("1 2\n", "3\n") and tasks["apps/0"].metadata["test_form"] == "stdio"
    assert tasks["apps/0"].prompt == "\nQUESTION:\nRead two integers and print their sum.\n\nUse Standard Input format\nANSWER:\n"
    double = tasks["apps/1"]
    assert double.metadata["unwrapped"] and double.tests[0] == CallCase("double_all", [[1, 2]], [2, 4])
    assert double.entry_point == "double_all" and "def double_all(xs):\n\t\nUse Call-Based format" in double.prompt
    assert double.metadata["difficulty"] == "interview" and double.metadata["call_style"] == "function"
    vowels = tasks["apps/2"]
    assert not vowels.metadata["unwrapped"] and [c.expected for c in vowels.tests] == [3, 0]
    assert tasks["apps/3"].tests == (StdioCase("2\nhello world\nbye", "bye\nhello world"),)
    assert tasks["apps/0"].reference.startswith("a, b = map(int")


def test_references_pass_and_wrong_programs_fail(pool):
    tasks = apps.load(FIXTURE)
    verdicts = pool.run([t.run(t.reference) for t in tasks.values()])
    assert [v.status for v in verdicts] == [Status.PASSED] * 4, verdicts
    wrong = {
        "apps/0": "a, b = map(int, input().split())\nprint(a - b)\n",
        "apps/1": "def double_all(xs):\n    return [[2 * x for x in xs]]\n",  # the wrapped form is not the answer
        "apps/2": "def count_vowels(w):\n    return [sum(c in 'aeiou' for c in w)]\n",
        "apps/3": "print(input())\n",
    }
    verdicts = pool.run([tasks[k].run(p) for k, p in wrong.items()])
    assert [v.status for v in verdicts] == [Status.FAILED] * 4, verdicts


def _write(tmp_path, rows):
    p = tmp_path / "apps.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(p)


def test_bad_rows_are_errors_and_unusable_files_too(tmp_path):
    good = json.loads(open(FIXTURE).readline())
    for bad, message in [
        ({k: v for k, v in good.items() if k != "question"}, "line 2: missing field 'question'"),
        ({**good, "input_output": {"inputs": []}}, "line 2: field 'input_output' must be str"),
        ({**good, "input_output": json.dumps({"fn_name": "not a name", "inputs": [[1]], "outputs": [1]})},
         "line 2: input_output fn_name must be a function name"),
        (good, "line 2: duplicate problem_id 0"),
    ]:
        with pytest.raises(DataError, match=message):
            apps.load(_write(tmp_path, [good, bad]))
    unusable = [{**good, "input_output": io} for io in ("", "[]", json.dumps({"inputs": [], "outputs": []}),
                                                       json.dumps({"inputs": ["1"], "outputs": ["1", "2"]}))]
    with pytest.raises(DataError, match=r"no usable problems \(4 rows without usable tests\)"):
        apps.load(_write(tmp_path, unusable))
    with pytest.raises(DataError, match="applies to Hugging Face datasets"):
        apps.load(FIXTURE, split="test")
    no_solutions = apps.load(_write(tmp_path, [{**good, "solutions": ""}]))
    assert no_solutions["apps/0"].reference is None


def test_a_local_dataset_directory_goes_through_the_real_datasets_library(tmp_path, monkeypatch, pool):
    """The Hugging Face path, for real but offline: a dataset directory on disk."""
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "ds" / "data").mkdir(parents=True)
    shutil.copy(FIXTURE, tmp_path / "ds" / "data" / "test.jsonl")
    via_hf = apps.load(str(tmp_path / "ds"))
    via_file = apps.load(FIXTURE)
    assert list(via_hf) == list(via_file) and len(via_hf) >= 3
    assert [t.tests for t in via_hf.values()] == [t.tests for t in via_file.values()]
    assert all(v.passed for v in pool.run([t.run(t.reference) for t in via_hf.values()]))
