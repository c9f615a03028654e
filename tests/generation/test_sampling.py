import json

import pytest

from execrl.errors import DataError
from execrl.generation import FakeGenerator, SamplingParams, generate_samples, prompt_sha
from execrl.sandbox import CallCase
from execrl.tasks import Task


def _tasks(k=5):
    return {f"t/{i}": Task(f"t/{i}", f"def f{i}(x):\n", (CallCase(f"f{i}", [1], 1),), f"f{i}") for i in range(k)}


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_n_lines_per_task_batched_across_tasks(tmp_path):
    out = tmp_path / "samples.jsonl"
    gen = FakeGenerator(lambda p, i: f"{p.split('(')[0]}-{i}\n#stop here")
    stats = generate_samples(gen, _tasks(), str(out), SamplingParams(n=3, stop=["\n#"]), progress=False,
                             prompts_per_call=2)
    rows = _rows(out)
    assert len(rows) == 15
    assert rows[:3] == [
        {"task_id": "t/0", "completion_id": c, "completion": f"def f0-{c}", "prompt_sha": prompt_sha("def f0(x):\n")}
        for c in range(3)
    ]
    assert [len(prompts) for prompts, _ in gen.calls] == [2, 2, 1]
    assert [p.seed for _, p in gen.calls] == [None] * 3
    assert (stats.tasks, stats.completions, stats.generated_now, stats.resumed) == (5, 15, 15, 0)


def test_seed_is_offset_per_call(tmp_path):
    gen = FakeGenerator()
    generate_samples(gen, _tasks(), str(tmp_path / "s.jsonl"), SamplingParams(seed=100), prompts_per_call=2,
                     progress=False)
    assert [p.seed for _, p in gen.calls] == [100, 102, 104]


def test_resume_after_a_torn_line_does_not_redo_finished_completions(tmp_path):
    out = tmp_path / "samples.jsonl"
    params = SamplingParams(n=2)
    generate_samples(FakeGenerator(), _tasks(2), str(out), params, progress=False)
    finished = out.read_text().splitlines()[:3]  # t/0 both, t/1 only its first completion...
    out.write_text("\n".join(finished) + '\n{"task_id": "t/1", "completion_id": 1, "compl')  # ...and a torn line

    gen = FakeGenerator(lambda p, i: f"again {i}")
    stats = generate_samples(gen, _tasks(4), str(out), params, progress=False)
    rows = _rows(out)
    assert [json.dumps(r) for r in rows[:3]] == [json.dumps(json.loads(x)) for x in finished]
    assert [(r["task_id"], r["completion_id"], r["completion"]) for r in rows[3:]] == [
        ("t/1", 1, "again 0"),  # only the missing id, asked of the generator with n=1
        ("t/2", 0, "again 0"), ("t/2", 1, "again 1"), ("t/3", 0, "again 0"), ("t/3", 1, "again 1"),
    ]
    assert sorted(p.n for _, p in gen.calls) == [1, 2]
    assert (stats.generated_now, stats.resumed) == (5, 3)

    again = FakeGenerator()
    assert generate_samples(again, _tasks(4), str(out), params, progress=False).generated_now == 0
    assert again.calls == [] and len(_rows(out)) == 8


def test_limit_and_task_ids(tmp_path):
    out = tmp_path / "samples.jsonl"
    gen = FakeGenerator()
    generate_samples(gen, _tasks(), str(out), SamplingParams(), limit=2, progress=False)
    assert [r["task_id"] for r in _rows(out)] == ["t/0", "t/1"]
    generate_samples(gen, _tasks(), str(out), SamplingParams(), task_ids=["t/4", "t/1", "t/3"], limit=2, progress=False)
    assert [r["task_id"] for r in _rows(out)] == ["t/0", "t/1", "t/4"]
    with pytest.raises(DataError, match="unknown task_id 'nope'"):
        generate_samples(gen, _tasks(), str(out), SamplingParams(), task_ids=["nope"], progress=False)


def test_prompt_fn_and_a_changed_prompt_on_resume(tmp_path):
    out = tmp_path / "samples.jsonl"
    gen = FakeGenerator()
    chat = lambda t: [{"role": "user", "content": "Complete:\n" + t.prompt}]  # noqa: E731
    generate_samples(gen, _tasks(1), str(out), SamplingParams(), prompt_fn=chat, progress=False)
    assert gen.calls[0][0] == [[{"role": "user", "content": "Complete:\ndef f0(x):\n"}]]
    assert _rows(out)[0]["prompt_sha"] == prompt_sha(chat(_tasks(1)["t/0"]))
    with pytest.raises(DataError, match="line 1: 't/0' was sampled from another prompt"):
        generate_samples(gen, _tasks(1), str(out), SamplingParams(), progress=False)


def test_samples_feed_evaluation(tmp_path):
    from execrl.evaluation import read_samples

    out = tmp_path / "samples.jsonl"
    generate_samples(FakeGenerator(), _tasks(2), str(out), SamplingParams(n=2), progress=False)
    samples = read_samples(str(out), _tasks(2))
    assert [(s.task_id, s.completion_id, s.program) for s in samples][:2] == [
        ("t/0", 0, "def f0(x):\n    return 0\n"), ("t/0", 1, "def f0(x):\n    return 1\n"),
    ]


def test_hf_end_to_end(tiny_model, tmp_path):
    from execrl.generation import make_backend

    gen = make_backend(f"hf:{tiny_model[0]}", chat=False, batch_size=4)
    out = tmp_path / "samples.jsonl"
    stats = generate_samples(gen, _tasks(3), str(out), SamplingParams(n=2, temperature=0.8, max_new_tokens=8, seed=0),
                             progress=False)
    assert stats.generated_now == 6 and len(_rows(out)) == 6
