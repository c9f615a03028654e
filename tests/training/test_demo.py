"""``execrl demo`` as a user runs it (in a subprocess, shrunk to seconds): every stage runs,
is evaluated on the same held-out tasks, and lands in a report; a rerun resumes; bad options
fail in one line before any work."""

import json
import os
import subprocess

import pytest

for _mod in ("torch", "transformers", "trl", "datasets", "matplotlib"):
    pytest.importorskip(_mod)

from tests.training._cli import EXECRL  # noqa: E402

SMALL = ("corpus_size=300", "pretrain_steps=4", "sft_tasks=6", "sft_steps=2", "grpo_steps=2", "grpo_generations=2",
         "grpo_batch=4", "eval_tasks=3", "eval_samples=5", "hidden=32")


def demo(*args, cwd=None):
    return subprocess.run([EXECRL, "demo", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    p = demo(*SMALL, f"out={out}")
    assert p.returncode == 0, p.stderr[-3000:]
    return out, p


def test_every_stage_is_evaluated_on_the_same_held_out_tasks(small):
    out, p = small
    s = json.loads((out / "summary.json").read_text())
    assert [st["stage"] for st in s["stages"]] == ["pre-trained", "SFT", "GRPO"]
    for st in s["stages"]:
        assert 0.0 <= st["pass@1"] <= st["pass@5"] <= 1.0 and sum(st["status_counts"].values()) == 3 * 5
    assert s["rl_gain"]["pass@1"] == pytest.approx(s["stages"][2]["pass@1"] - s["stages"][1]["pass@1"])
    held = {json.loads(x)["task_id"] for x in (out / "sft" / "eval-before" / "results.jsonl").read_text().splitlines()}
    for name in ("sft/eval-after", "grpo/eval-after"):
        assert {json.loads(x)["task_id"] for x in (out / name / "results.jsonl").read_text().splitlines()} == held
    # GRPO trains on the train tasks SFT did not see
    assert json.loads((out / "grpo" / "config.json").read_text())["skip"] == 6
    assert s["train_tasks"] == 336 - 3 and s["held_out_tasks"] == 3
    assert "pre-trained" in p.stdout and "RL gain" in p.stdout and "report:" in p.stdout


def test_report_and_pretraining_record(small):
    out, _ = small
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "GRPO" in page
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    pre = json.loads((out / "pretrain" / "pretrain.json").read_text())
    assert len(pre["losses"]) == 4 and pre["corpus"] == 300


def test_held_out_combinations_never_reach_the_pretraining_corpus(small):
    from execrl.tasks import basic, synth

    out, _ = small
    tasks = basic.load(str(out / "tasks.jsonl"))
    held = {json.loads(x)["task_id"] for x in (out / "sft" / "eval-before" / "results.jsonl").read_text().splitlines()}
    statement = {t: task.prompt.split("\n\n")[0] for t, task in tasks.items()}  # signature + "Return x plus 7."
    corpus = synth.corpus(3000, exclude={tasks[t].metadata["tags"][2] for t in held}, seed=0, bug_rate=0.3)
    seen = {t for t, s in statement.items() if any(p.startswith(s + "\n") for p in corpus)}
    assert not seen & held
    assert len(seen) > 200  # the check can see a task: most train tasks' statements are in the corpus


def test_rerun_resumes_every_stage(small):
    out, _ = small
    files = [out / "pretrain" / "pretrain.json", out / "sft" / "stage.json", out / "grpo" / "stage.json",
             out / "grpo" / "final" / "model.safetensors"]
    stamps = [os.path.getmtime(f) for f in files]
    p = demo(*SMALL, f"out={out}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert [os.path.getmtime(f) for f in files] == stamps  # nothing trained or saved again
    assert json.loads((out / "summary.json").read_text())["stages"][0]["stage"] == "pre-trained"


@pytest.mark.parametrize("override, words", [
    ("bug_rat=0.1", ["unknown key", "bug_rate"]),
    ("bug_rate=1.5", ["bug_rate=1.5", "[0, 1)"]),
    ("grpo_batch=6", ["grpo_batch=6", "multiple of grpo_generations=8"]),
    ("pretrain_steps=x", ["pretrain_steps", "int"]),
    ("sft_tasks=296", ["sft_tasks=296", "no train task for GRPO"]),
    ("eval_tasks=336", ["eval_tasks=336", "no train task"]),
    ("sft_steps=0 grpo_steps=0", ["nothing to train"]),
])
def test_bad_option_is_one_line_before_any_work(tmp_path, override, words):
    p = demo(*override.split(), f"out={tmp_path / 'd'}", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), p.stderr
    assert not (tmp_path / "d").exists()
