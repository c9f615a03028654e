import subprocess
import sys

import pytest

from execrl.training.pairs import mine_pairs, similarity

GOOD = "def f(x):\n    return x + 1\n"
GOOD_2 = "def f(x):\n    y = x\n    return y + 1\n"
NEAR_MISS = "def f(x):\n    return x - 1\n"
FAR_MISS = "import os\nprint('hello world')\n"


def s(task, completion, passed, **extra):
    return {"task_id": task, "prompt": f"prompt {task}", "completion": completion, "passed": passed, **extra}


def test_most_similar_failing_is_rejected():
    pairs = mine_pairs([s("A", FAR_MISS, False), s("A", GOOD, True), s("A", NEAR_MISS, False)])
    assert pairs == [
        {
            "prompt": "prompt A",
            "chosen": GOOD,
            "rejected": NEAR_MISS,
            "task_id": "A",
            "similarity": similarity(GOOD, NEAR_MISS),
        }
    ]
    assert similarity(GOOD, NEAR_MISS) > similarity(GOOD, FAR_MISS)


def test_no_pair_for_one_sided_tasks():
    samples = [s("only_pass", GOOD, True), s("only_pass", GOOD_2, True), s("only_fail", NEAR_MISS, False)]
    assert mine_pairs(samples) == []
    assert mine_pairs([]) == []


def test_rejected_used_once_by_default_most_similar_chosen_wins():
    samples = [s("A", GOOD_2, True), s("A", GOOD, True), s("A", NEAR_MISS, False), s("A", FAR_MISS, False)]
    pairs = mine_pairs(samples)
    # NEAR_MISS is closest to GOOD, so GOOD takes it; GOOD_2 falls back to FAR_MISS.
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(GOOD, NEAR_MISS), (GOOD_2, FAR_MISS)]
    assert pairs[0]["similarity"] >= pairs[1]["similarity"]
    # One failing sample and max_rejected_uses=1: only one pair.
    assert len(mine_pairs(samples[:3])) == 1
    # Allowing reuse: both passing completions take NEAR_MISS.
    reuse = mine_pairs(samples, max_rejected_uses=2)
    assert [(p["chosen"], p["rejected"]) for p in reuse] == [(GOOD, NEAR_MISS), (GOOD_2, NEAR_MISS)]


def test_caps_and_min_similarity():
    samples = [s("A", GOOD_2, True), s("A", GOOD, True), s("A", NEAR_MISS, False), s("A", FAR_MISS, False)]
    assert [p["chosen"] for p in mine_pairs(samples, max_pairs_per_task=1)] == [GOOD]
    high = mine_pairs(samples, min_similarity=similarity(GOOD, NEAR_MISS))
    assert [(p["chosen"], p["rejected"]) for p in high] == [(GOOD, NEAR_MISS)]
    assert mine_pairs(samples, min_similarity=1.01) == []


def test_identical_texts_never_paired():
    # "x = 1" both passed and failed (flaky): dropped from both sides; duplicates collapse.
    samples = [s("A", "x = 1", True), s("A", "x = 1", False), s("A", "x = 2", False), s("A", "x = 1", True)]
    assert mine_pairs(samples) == []
    dup = [s("A", GOOD, True), s("A", GOOD, True), s("A", NEAR_MISS, False), s("A", NEAR_MISS, False)]
    assert len(mine_pairs(dup, max_rejected_uses=5)) == 1


def test_ties_are_deterministic():
    # "abcx" and "abcy" are equally similar to "abcd" (ratio 0.75): input order decides...
    assert similarity("abcd", "abcx") == similarity("abcd", "abcy") == 0.75
    samples = [s("A", "abcd", True), s("A", "abcx", False), s("A", "abcy", False)]
    assert mine_pairs(samples)[0]["rejected"] == "abcx"
    assert mine_pairs(samples[:1] + samples[:0:-1])[0]["rejected"] == "abcy"
    # ...unless scores differ: the lower-scored failing completion is preferred.
    scored = [s("A", "abcd", True), s("A", "abcx", False, score=0.5), s("A", "abcy", False, score=0.1)]
    assert mine_pairs(scored)[0]["rejected"] == "abcy"


def test_deterministic_order_across_tasks_and_runs():
    samples = [
        s("B", GOOD, True),
        s("A", NEAR_MISS, False),
        s("B", NEAR_MISS, False),
        s("A", GOOD, True),
        s("C", GOOD, True),
    ]
    first = mine_pairs(samples)
    assert [p["task_id"] for p in first] == ["B", "A"]
    assert mine_pairs(list(samples)) == first


def test_bad_samples_rejected():
    with pytest.raises(ValueError, match="completion"):
        mine_pairs([{"task_id": "A", "prompt": "", "passed": True}])
    with pytest.raises(ValueError, match="bool"):
        mine_pairs([s("A", GOOD, 1)])
    with pytest.raises(ValueError, match="max_rejected_uses"):
        mine_pairs([], max_rejected_uses=0)


def test_package_import_does_not_need_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import execrl.training, execrl.training.pairs\n"
        "assert {'pairs', 'rl_math'} <= set(execrl.training.__all__)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
