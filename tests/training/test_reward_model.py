"""The reward-model recipe as a user runs it: the installed ``execrl train reward_model``
command, on CPU with the tiny local model (a 2-step smoke run that mines pairs by
execution, trains a one-label sequence classifier and measures its held-out pairwise
accuracy), and config errors that stop before any work."""

import json
import os

import pytest

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)

from tests.training._cli import assert_config_error, jsonl, train  # noqa: E402 - after the skips

SMOKE = ("max_steps=2", "limit=4", "eval_tasks=4", "samples_per_task=2", "max_new_tokens=16",
         "save_steps=1", "run_name=smoke")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("reward_model")
    p = train("reward_model", *SMOKE, f"output_dir={out}")
    assert p.returncode == 0, p.stderr[-3000:]
    return out, json.loads(p.stdout.strip().splitlines()[-1])


def test_two_step_cpu_run_mines_trains_and_saves_a_classifier(smoke):
    from transformers import AutoModelForSequenceClassification

    out, s = smoke
    path = s["run"]
    assert path == os.path.join(str(out), "smoke")
    cfg = json.load(open(os.path.join(path, "config.json")))
    assert cfg["max_steps"] == 2 and cfg["samples_per_task"] == 2
    losses = [r for r in jsonl(os.path.join(path, "metrics.jsonl")) if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2] and all(isinstance(r["loss"], float) for r in losses)
    # train pairs: 4 tasks x 2 samples judged by the sandbox; held-out pairs from the 4 other tasks
    assert len(jsonl(os.path.join(path, "mining", "results.jsonl"))) == s["mining_samples"] == 8
    assert len(jsonl(os.path.join(path, "eval-pairs", "results.jsonl"))) == 8
    pairs = jsonl(os.path.join(path, "mining", "pairs.jsonl"))
    assert len(pairs) == s["pairs"] == s["pairs_mined"] + s["pairs_from_references"] >= 1
    assert all(p["chosen"] != p["rejected"] and p["prompt"] for p in pairs)
    eval_pairs = jsonl(os.path.join(path, "eval-pairs", "pairs.jsonl"))
    assert len(eval_pairs) == s["eval_pairs"] >= 1
    assert not {p["task_id"] for p in eval_pairs} & {p["task_id"] for p in pairs}  # held out: never trained on
    for key in ("accuracy_before", "accuracy_after"):
        assert isinstance(s[key], float) and 0.0 <= s[key] <= 1.0
    assert s["steps"] == 2 and isinstance(s["train_loss"], float) and s["resumed_from"] is None
    model = AutoModelForSequenceClassification.from_pretrained(os.path.join(path, "final"))
    assert model.config.num_labels == 1
    assert os.path.exists(os.path.join(path, "final", "tokenizer_config.json"))


@pytest.mark.parametrize("override, words", [
    ("max_stepz=2", ["unknown key", "max_steps"]),
    ("samples_per_task=two", ["samples_per_task", "int"]),
    ("samples_per_task=1", ["samples_per_task", "at least 2"]),
    ("learning_rate=0", ["learning_rate", "positive"]),
])
def test_bad_config_fails_with_one_line_before_any_work(tmp_path, override, words):
    assert_config_error("reward_model", [override], words, tmp_path)
