import gzip
import json

import pytest

from execrl.errors import DataError
from execrl.sandbox import CheckTest
from execrl.tasks import humaneval, load_benchmark


def test_bundled_problems():
    tasks = humaneval.load()
    t = tasks["HumanEval/32"]
    assert isinstance(t.tests, CheckTest) and t.tests.entry_point == "find_zero"
    assert "def poly" in t.tests.prelude  # the test's helper comes from the benchmark text
    assert t.reference.startswith(t.prompt)


def test_gz_and_plain_files_and_errors(tmp_path):
    row = {"task_id": "X/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c):\n    assert c() == 1\n"}
    plain = tmp_path / "p.jsonl"
    plain.write_text(json.dumps(row) + "\n")
    gz = tmp_path / "p.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps(row) + "\n")
    assert humaneval.load(str(plain))["X/0"].reference is None
    assert list(humaneval.load(str(gz))) == ["X/0"]
    plain.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match="line 2: duplicate task_id"):
        humaneval.load(str(plain))
    plain.write_text(json.dumps({**row, "test": 3}) + "\n")
    with pytest.raises(DataError, match="'test' must be a string"):
        humaneval.load(str(plain))
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read"):
        humaneval.load(str(tmp_path / "bad.jsonl.gz"))


def test_unknown_benchmark():
    with pytest.raises(DataError, match="unknown benchmark 'nope'"):
        load_benchmark("nope")
