"""execrl-synth: generated problems in execrl-basic's format, whose references pass their own
hidden tests in the sandbox, and a pre-training corpus that leaves held-out problems out."""

import random

from execrl.evaluation import evaluate, reference_samples
from execrl.tasks import basic, synth


def test_rows_are_execrl_basic_files_and_deterministic(tmp_path):
    rows = synth.generate(seed=3)
    assert rows == synth.generate(seed=3) and rows != synth.generate(seed=4)
    assert len(rows) == synth.count() == sum(8 ** t.constants for t in synth.TEMPLATES)
    tasks = basic.load(synth.write(str(tmp_path / "t.jsonl"), rows))
    assert len(tasks) == len(rows) and len({t.metadata["tags"][2] for t in tasks.values()}) == len(rows)
    t = tasks["execrl-synth/0"]
    assert t.prompt.startswith("def add(x: int) -> int:\n") and ">>> add(" in t.prompt
    assert len(t.tests) == 5 and len(t.public_tests) == 1


def test_every_reference_passes_its_hidden_tests_and_a_wrong_constant_fails(tmp_path):
    tasks = basic.load(synth.write(str(tmp_path / "t.jsonl"), synth.generate(seed=0)))
    s = evaluate(tasks, reference_samples(tasks), str(tmp_path / "r.jsonl"), ks=(1,), progress=False)
    assert s.pass_at_k["pass@1"] == 1.0 and s.status_counts == {"passed": len(tasks)}
    t = tasks["execrl-synth/0"]  # add, a=2
    bad = t.reference.replace("return x + 2", "return x + 3")
    assert bad != t.reference
    from execrl.evaluation import Sample

    s = evaluate({t.task_id: t}, [Sample(t.task_id, bad, 0, 0)], str(tmp_path / "bad.jsonl"), ks=(1,), progress=False)
    assert s.status_counts == {"failed": 1}


def test_corpus_leaves_out_excluded_combinations_and_can_drop_docstrings():
    rows = synth.generate()
    exclude = {r["tags"][2] for r in rows[:100]}
    texts = synth.corpus(2000, exclude=exclude, seed=1)
    statements = {r["prompt"].split("\n\n")[0] for r in rows[:100]}
    assert not any(p.split("\n\n")[0] in statements for p in texts)
    assert all(p.count('"""') == 2 for p in texts)
    bare = synth.corpus(50, seed=1, docstrings=False)
    assert all('"""' not in p and p.count("\n") == 2 for p in bare)
    assert synth.corpus(10, exclude={r["tags"][2] for r in rows}) == []


def test_bugs_change_the_body_at_the_asked_rate():
    rng = random.Random(0)
    for t in synth.TEMPLATES:
        body = f"    return {t.body.format(a=4, b=6)}\n"
        assert all(synth.mutate(body, rng) != body for _ in range(20)), t.name
    clean = synth.corpus(400, seed=2)
    buggy = synth.corpus(400, seed=2, bug_rate=0.5)
    changed = sum(a != b for a, b in zip(clean, buggy, strict=True))
    assert 120 < changed < 280
