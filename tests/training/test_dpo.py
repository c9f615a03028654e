"""The DPO recipe as a user runs it: the installed ``execrl train dpo`` command, on CPU
with the tiny local model (a 2-step smoke run that mines pairs by execution, and config
errors that stop before any work), plus the reference fallback on its own."""

import json
import os
from types import SimpleNamespace

import pytest

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)

from execrl.training.dpo import reference_pairs  # noqa: E402 - after the skips
from tests.training._cli import assert_config_error, jsonl, train  # noqa: E402

SMOKE = ("max_steps=2", "limit=4", "eval_tasks=2", "samples_per_task=2", "eval_max_new_tokens=16",
         "max_new_tokens=16", "save_steps=1", "run_name=smoke")


def run(*args):
    return train("dpo", *args)




@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("dpo")
    p = run(*SMOKE, f"output_dir={out}")
    assert p.returncode == 0, p.stderr[-3000:]
    return out, json.loads(p.stdout.strip().splitlines()[-1])


def test_two_step_cpu_run_mines_trains_and_saves(smoke):
    out, s = smoke
    path = s["run"]
    assert path == os.path.join(str(out), "smoke")
    cfg = json.load(open(os.path.join(path, "config.json")))
    assert cfg["max_steps"] == 2 and cfg["beta"] == 0.1
    losses = [r for r in jsonl(os.path.join(path, "metrics.jsonl")) if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2] and all(isinstance(r["loss"], float) for r in losses)
    # mining: 4 train tasks x 2 samples, each judged by the sandbox
    samples = jsonl(os.path.join(path, "mining", "samples.jsonl"))
    results = jsonl(os.path.join(path, "mining", "results.jsonl"))
    assert len(samples) == len(results) == 8 and all("passed" in r for r in results)
    pairs = jsonl(os.path.join(path, "mining", "pairs.jsonl"))
    assert len(pairs) == s["pairs"] >= 1
    assert all(p["chosen"] != p["rejected"] and p["prompt"] for p in pairs)
    assert s["pairs"] == s["pairs_mined"] + s["pairs_from_references"]
    assert sum(p["source"] == "reference" for p in pairs) == s["pairs_from_references"]
    assert s["mining_samples"] == 8
    assert os.path.exists(os.path.join(path, "final", "config.json"))
    assert os.path.exists(os.path.join(path, "final", "tokenizer_config.json"))
    for name in ("eval-before", "eval-after"):
        assert len(jsonl(os.path.join(path, name, "results.jsonl"))) == 2
    assert "pass@1" in s["before"] and "pass@1" in s["after"]
    assert s["steps"] == 2 and isinstance(s["train_loss"], float) and s["resumed_from"] is None


def test_reference_fallback_pairs_each_reference_with_its_nearest_failure():
    prompt = "def inc(x):\n"
    tasks = {"a": SimpleNamespace(prompt=prompt, reference=prompt + "    return x + 1\n"),
             "b": SimpleNamespace(prompt=prompt, reference=None),  # no reference: no pair
             "c": SimpleNamespace(prompt=prompt, reference=prompt + "    return x\n")}  # no failure: no pair
    rows = [{"task_id": "a", "prompt": prompt, "completion": "    pass\n", "passed": False},
            {"task_id": "a", "prompt": prompt, "completion": "    return x + 2\n", "passed": False},
            {"task_id": "b", "prompt": prompt, "completion": "    pass\n", "passed": False},
            {"task_id": "c", "prompt": prompt, "completion": "    return x\n", "passed": True}]
    pairs = reference_pairs(tasks, rows)
    assert [(p["task_id"], p["chosen"], p["rejected"], p["source"]) for p in pairs] == [
        ("a", "    return x + 1\n", "    return x + 2\n", "reference")]


@pytest.mark.parametrize("override, words", [
    ("bta=0.2", ["unknown key", "beta"]),
    ("samples_per_task=two", ["samples_per_task", "int"]),
    ("beta=0", ["beta", "positive"]),
    ("beta=-0.1", ["beta", "positive"]),
    ("temperature=0", ["temperature", "positive"]),
    ("samples_per_task=1", ["samples_per_task", "at least 2"]),
])
def test_bad_config_fails_with_one_line_before_any_work(tmp_path, override, words):
    assert_config_error("dpo", [override], words, tmp_path)

