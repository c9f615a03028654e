import json

import pytest

from execrl.errors import DataError
from execrl.evaluation import Sample, evaluate, read_samples, reference_samples
from execrl.sandbox import CallCase
from execrl.tasks import Task, humaneval


def _tasks():
    return {
        "t/0": Task("t/0", "def inc(x):\n", (CallCase("inc", [1], 2), CallCase("inc", [5], 6)), "inc",
                    reference="def inc(x):\n    return x + 1\n"),
        "t/1": Task("t/1", "def dbl(x):\n", (CallCase("dbl", [2], 4),), "dbl", reference="def dbl(x):\n    return 2 * x\n"),
    }


def _samples():
    return [
        Sample("t/0", "def inc(x):\n    return x + 1\n", 1, 0),
        Sample("t/0", "def inc(x):\n    return x\n", 2, 1),
        Sample("t/1", "def dbl(x):\n    return 2 * x\n", 3, 0),
        Sample("t/1", "def dbl(x):\n    return x ** 2\n", 4, 1),
    ]


def test_rows_in_input_order_and_pass_at_k(pool, tmp_path):
    out = tmp_path / "r.jsonl"
    s = evaluate(_tasks(), _samples(), str(out), pool=pool, ks=(1, 2), progress=False)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["passed"] for r in rows] == [True, False, True, True]  # 2**2 == 2*2
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert s.pass_at_k == {"pass@1": pytest.approx(0.75), "pass@2": pytest.approx(1.0)}
    assert s.status_counts == {"passed": 3, "failed": 1}


def test_resume_skips_done_rows_and_cuts_a_torn_line(pool, tmp_path):
    out = tmp_path / "r.jsonl"
    evaluate(_tasks(), _samples()[:2], str(out), pool=pool, progress=False)
    with open(out, "a") as f:
        f.write('{"task_id": "t/1", "ind')  # the process died mid-write
    s = evaluate(_tasks(), _samples(), str(out), pool=pool, progress=False)
    assert (s.resumed, s.evaluated_now) == (2, 2)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]


def test_resume_reruns_when_samples_changed(pool, tmp_path):
    out = tmp_path / "r.jsonl"
    evaluate(_tasks(), _samples(), str(out), pool=pool, progress=False)
    changed = _samples()
    changed[1] = Sample("t/0", "def inc(x):\n    return x + 1\n", 2, 1)
    s = evaluate(_tasks(), changed, str(out), pool=pool, progress=False)
    assert (s.resumed, s.evaluated_now) == (1, 3)
    assert [json.loads(x)["passed"] for x in out.read_text().splitlines()] == [True, True, True, True]


def test_read_samples_forms_and_errors(tmp_path):
    tasks = humaneval.load()
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return False\n"}) + "\n\n"
                 + json.dumps({"task_id": "HumanEval/0", "solution": "def has_close_elements(n, t): return 1"}) + "\n")
    a, b = read_samples(str(p), tasks)
    assert a.program.startswith(tasks["HumanEval/0"].prompt) and b.program.startswith("def has_close")
    assert (a.completion_id, b.completion_id) == (0, 1)
    for text, msg in [
        ('{"task_id": "HumanEval/0", "completion": 1}\n', "line 1: needs a string field 'completion' or 'solution'"),
        ('{"task_id": "Nope/1", "completion": ""}\n', "line 1: unknown task_id 'Nope/1'"),
        ('{"completion": ""}\n', "line 1: missing field 'task_id'"),
        ('\n{"task_id": \n', "line 2: not valid JSON"),
        ("[1]\n", "line 1: expected a JSON object"),
        ("", "no samples in file"),
    ]:
        p.write_text(text)
        with pytest.raises(DataError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            read_samples(str(p), tasks)
    with pytest.raises(DataError, match="no such file"):
        read_samples(str(tmp_path / "missing.jsonl"), tasks)


def test_reference_samples_need_references():
    assert len(reference_samples(humaneval.load())) == 164
    t = Task("x", "p", (CallCase("f", [], 1),))
    with pytest.raises(DataError, match="no reference"):
        reference_samples({"x": t})


def test_public_hidden_gap_shows_a_sample_that_fits_the_examples_only(pool, tmp_path):
    task = Task("g/0", "def sq(x):\n", (CallCase("sq", [3], 9), CallCase("sq", [4], 16)), "sq",
                public_tests=(CallCase("sq", [2], 4),))
    samples = [Sample("g/0", "def sq(x):\n    return x * x\n", 1, 0),
               Sample("g/0", "def sq(x):\n    return 4\n", 2, 1)]  # memorised the example
    out = tmp_path / "r.jsonl"
    s = evaluate({"g/0": task}, samples, str(out), pool=pool, progress=False)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["passed"], r["public_passed"]) for r in rows] == [(True, True), (False, True)]
    assert s.public_pass_at_1 == pytest.approx(1.0) and s.public_hidden_gap == pytest.approx(0.5)
    assert s.per_task["g/0"] == {"n": 2, "correct": 1, "pass@1": pytest.approx(0.5)}
    assert evaluate({"g/0": task}, samples, str(tmp_path / "n.jsonl"), pool=pool, progress=False,
                    public=False).public_pass_at_1 is None


def test_extract_option_reads_chat_answers(tmp_path):
    tasks = humaneval.load()
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({"task_id": "HumanEval/53", "completion": "Sure:\n```python\ndef add(x, y):\n    return x + y\n\nprint(add(1, 2))\n```"}) + "\n")
    [raw] = read_samples(str(p), tasks)
    [clean] = read_samples(str(p), tasks, extract=True)
    assert "```" in raw.program and "```" not in clean.program and "print(" not in clean.program


def test_extracted_chat_answers_to_a_stdin_task_pass(pool, tmp_path):
    from execrl.sandbox import StdioCase

    tasks = {"s/0": Task("s/0", "Read n; print n squared.", (StdioCase("3\n", "9\n"), StdioCase("4\n", "16\n")))}
    assert tasks["s/0"].is_script and not _tasks()["t/0"].is_script
    p = tmp_path / "s.jsonl"
    answers = ["```python\nn = int(input())\nprint(n * n)\n```",
               "```python\ndef main():\n    print(int(input()) ** 2)\n\nif __name__ == '__main__':\n    main()\n```",
               "```python\nprint(int(input()) + 1)\n```"]
    p.write_text("".join(json.dumps({"task_id": "s/0", "completion": a}) + "\n" for a in answers))
    summary = evaluate(tasks, read_samples(str(p), tasks, extract=True), str(tmp_path / "r.jsonl"), pool=pool,
                       progress=False)
    assert summary.pass_at_k["pass@1"] == pytest.approx(2 / 3)
