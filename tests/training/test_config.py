"""Config loading (defaults < preset < overrides), one-line errors, --help text, run directories."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Literal

import pytest

from execrl.errors import DataError
from execrl.training.config import (
    RunDir,
    check_local_path,
    config_help,
    config_to_dict,
    field_doc,
    load_config,
    preset_command,
)


@dataclass
class Gen:
    temperature: float = field_doc(1.0, "Sampling temperature.")
    max_new_tokens: int = field_doc(64, "Most new tokens per completion.")
    stop: list[str] = field_doc(["\ndef"], "Stop strings.")


@dataclass
class Toy:
    model: str = field_doc("tiny-llama", "Model id or local path.")
    lr: float = field_doc(1e-5, "Learning rate.")
    steps: int = field_doc(2, "Optimizer steps.")
    bf16: bool = field_doc(False, "Use bfloat16.")
    seed: int | None = field_doc(None, "Random seed; none for unseeded.")
    loss: Literal["sigmoid", "hinge"] = field_doc("sigmoid", "DPO loss variant.")
    tags: list[str] = field_doc([], "Free-form tags.")
    ks: list[int] = field_doc([1, 10], "pass@k values.")
    generation: Gen = field_doc(Gen, "How completions are sampled.")

    def validate(self) -> None:
        check_local_path("model", self.model)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


def one_line_error(match: str, *args, **kw) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_config(Toy, *args, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_defaults_and_types():
    cfg = load_config(Toy, None, [])
    assert cfg == Toy()
    assert cfg.generation.stop == ["\ndef"] and cfg.generation.stop is not Toy().generation.stop
    cfg = load_config(Toy, None, ["lr=3e-4", "steps=7", "bf16=yes", "seed=3", "loss=hinge", "tags=a, b,,c",
                                  "ks=1,5", "generation.temperature=0.7", "model=Qwen/Qwen2.5-0.5B"])
    assert (cfg.lr, cfg.steps, cfg.bf16, cfg.seed, cfg.loss) == (3e-4, 7, True, 3, "hinge")
    assert cfg.tags == ["a", "b", "c"] and cfg.ks == [1, 5] and cfg.generation.temperature == 0.7
    assert cfg.generation.max_new_tokens == 64
    for text, want in [("true", True), ("1", True), ("No", False), ("0", False), ("false", False)]:
        assert load_config(Toy, None, [f"bf16={text}"]).bf16 is want
    assert load_config(Toy, None, ["seed=3", "seed=none"]).seed is None
    assert load_config(Toy, None, ["tags="]).tags == []
    assert load_config(Toy, None, ["model=a=b"]).model == "a=b"


def test_precedence_defaults_preset_overrides(tmp_path):
    preset = write(tmp_path / "p.yaml", "# execrl train toy --preset p.yaml\nlr: 1e-4\nsteps: 5\n"
                   "generation:\n  temperature: 0.2\n  stop: ['```', \"\\nclass\"]\ntags: [x, y]\n")
    assert preset_command(preset) == "execrl train toy --preset p.yaml"
    cfg = load_config(Toy, preset, ["steps=9"])
    assert cfg.lr == 1e-4  # YAML reads 1e-4 as a string; the float field parses it
    assert cfg.steps == 9 and cfg.tags == ["x", "y"]
    assert cfg.generation.temperature == 0.2 and cfg.generation.stop == ["```", "\nclass"]
    assert cfg.generation.max_new_tokens == 64  # a preset group merges with the defaults
    dotted = write(tmp_path / "d.yaml", "generation.max_new_tokens: 8\n")
    assert load_config(Toy, dotted, ["generation.max_new_tokens=16"]).generation.max_new_tokens == 16
    assert load_config(Toy, dotted, []).generation.max_new_tokens == 8
    assert load_config(Toy, write(tmp_path / "e.yaml", "# nothing\n"), []) == Toy()


def test_unknown_keys_suggest():
    msg = one_line_error(r"^unknown key 'lrr' \(did you mean 'lr'\?\); valid keys: model, lr, ", overrides=["lrr=1"])
    assert "generation.temperature" in msg
    one_line_error(r"unknown key 'generation.temprature' \(did you mean 'generation.temperature'\?\)",
                   overrides=["generation.temprature=1"])
    one_line_error(r"unknown key 'temperature' \(did you mean 'generation.temperature'\?\)",
                   overrides=["temperature=1"])
    one_line_error(r"unknown key 'lr.x'", overrides=["lr.x=1"])
    one_line_error(r"^generation is a group of settings; set its fields", overrides=["generation=1"])


@pytest.mark.parametrize("item, words", [
    ("lr=abc", "lr=abc: expected a float"),
    ("steps=1.5", "steps=1.5: expected an int"),
    ("bf16=maybe", "bf16=maybe: expected a bool"),
    ("seed=x", "seed=x: expected int | None"),
    ("loss=ipo", "loss=ipo: expected one of sigmoid, hinge"),
    ("ks=1,two", "ks=1,two: expected an int"),
    ("generation.temperature=hot", "generation.temperature=hot: expected a float"),
])
def test_bad_values(item, words):
    assert one_line_error("^" + re.escape(words), overrides=[item]).startswith(words)


@pytest.mark.parametrize("item", ["lr", "=3", "lr 3"])
def test_malformed_override(item):
    one_line_error(r"expected key=value", overrides=[item])


def test_preset_errors(tmp_path):
    one_line_error(r"nope.yaml: no such preset file", str(tmp_path / "nope.yaml"))
    one_line_error(r"is a directory", str(tmp_path))
    one_line_error(r"a.yaml: expected a mapping of config keys, got a YAML list", write(tmp_path / "a.yaml", "- 1\n"))
    one_line_error(r"b.yaml: not valid YAML \(line \d+", write(tmp_path / "b.yaml", "lr: [1,\n"))
    one_line_error(r"c.yaml: unknown key 'stpes' \(did you mean 'steps'\?\)", write(tmp_path / "c.yaml", "stpes: 3\n"))
    one_line_error(r"d.yaml: steps='x': expected an int", write(tmp_path / "d.yaml", "steps: x\n"))
    one_line_error(r"e.yaml: model=7: expected a string \(quote it", write(tmp_path / "e.yaml", "model: 7\n"))
    one_line_error(r"f.yaml: generation.bogus=1: |unknown key 'generation.bogus'",
                   write(tmp_path / "f.yaml", "generation: {bogus: 1}\n"))
    one_line_error(r"g.yaml: loss='ipo': expected one of sigmoid, hinge", write(tmp_path / "g.yaml", "loss: ipo\n"))
    (tmp_path / "h.yaml").write_bytes(b"lr: \xff\xfe\n")
    one_line_error(r"h.yaml: ", str(tmp_path / "h.yaml"))


def test_validate_hook(tmp_path):
    one_line_error(r"^model=./no/such/dir: no such file or directory$", overrides=["model=./no/such/dir"])
    one_line_error(r"^model=~/no-such-execrl-model: no such", overrides=["model=~/no-such-execrl-model"])
    one_line_error(r"^steps must be >= 1, got 0$", overrides=["steps=0"])
    assert load_config(Toy, None, [f"model={tmp_path}"]).model == str(tmp_path)
    assert load_config(Toy, None, ["model=org/name"]).model == "org/name"  # a hub id, not a path


def test_help_lists_every_field():
    text = config_help(Toy)
    for line in ["lr: float = 1e-05", "Learning rate.", "seed: int | None = None", "loss: sigmoid|hinge = 'sigmoid'",
                 "tags: list[str] = []", "generation.*  How completions are sampled.",
                 "generation.temperature: float = 1.0", "Sampling temperature.", "generation.stop: list[str]"]:
        assert line in text, line
    docs = [f.metadata["help"] for cls in (Toy, Gen) for f in cls.__dataclass_fields__.values()]
    assert all(d and d in text for d in docs)


def test_field_doc_is_one_line():
    with pytest.raises(ValueError):
        field_doc(1, "two\nlines")


def test_rundir_create_log_resume(tmp_path, monkeypatch):
    cfg = load_config(Toy, None, ["steps=3"])
    run = RunDir.create(str(tmp_path), config=cfg)
    assert re.fullmatch(r"toy-\d{8}-\d{6}", os.path.basename(run.path)) and not run.resumed
    with open(os.path.join(run.path, "config.json")) as f:
        assert json.load(f) == config_to_dict(cfg)
    assert config_to_dict(cfg)["generation"]["temperature"] == 1.0
    monkeypatch.setattr("time.strftime", lambda fmt: os.path.basename(run.path)[4:])
    twin = RunDir.create(str(tmp_path), config=cfg)  # the same second: a sibling dir, never a shared one
    assert twin.path == run.path + "-2" and not twin.resumed
    monkeypatch.undo()

    run = RunDir.create(str(tmp_path), "exp", config=cfg)
    assert run.checkpoints == [] and run.latest_checkpoint() is None and run.resume_step == 0
    for step in (1, 2, 3):
        run.log({"loss": 1.0 / step, "nan": float("nan")}, step)
        if step < 3:
            with run.saving(step) as d:
                open(os.path.join(d, "weights"), "w").close()
    os.makedirs(os.path.join(run.path, "checkpoint-10.tmp"))  # an interrupted save is not a checkpoint
    os.makedirs(os.path.join(run.path, "checkpoint-x"))
    run.close()
    lines = open(run.metrics_path).read().splitlines()
    rows = [json.loads(x) for x in lines]  # strict JSON: no NaN tokens
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[1]["loss"] == 0.5 and rows[0]["nan"] == "NaN"
    assert [os.path.basename(p) for p in run.checkpoints] == ["checkpoint-1", "checkpoint-2"]

    with open(run.metrics_path, "a") as f:
        f.write('{"step": 4, "lo')  # the process died mid-line
    again = RunDir.create(str(tmp_path), "exp", config=load_config(Toy, None, ["steps=3"]))
    assert again.resumed and again.path == run.path
    assert again.latest_checkpoint().endswith("checkpoint-2") and again.resume_step == 2
    assert [r["step"] for r in again.read_metrics()] == [1, 2]  # step 3 is redone after checkpoint-2
    with again:
        again.log({"loss": 0.3}, 3)
    assert [r["step"] for r in RunDir.open(run.path).read_metrics()] == [1, 2, 3]


def test_rundir_torn_line_then_log(tmp_path):
    run = RunDir.create(str(tmp_path), "r", config=Toy())
    with open(run.metrics_path, "w") as f:
        f.write('{"step": 1, "loss": 1}\n{"step": 2, "lo')
    run.log({"loss": 0.5}, 2)
    run.close()
    assert [json.loads(x) for x in open(run.metrics_path)] == [{"step": 1, "loss": 1}, {"step": 2, "loss": 0.5}]


def test_rundir_mismatch_and_force_new(tmp_path):
    RunDir.create(str(tmp_path), "exp", config=Toy())
    with pytest.raises(DataError) as info:
        RunDir.create(str(tmp_path), "exp", config=load_config(Toy, None, ["generation.temperature=0.5"]))
    msg = str(info.value)
    assert "\n" not in msg and "generation.temperature: 1.0 in config.json, 0.5 now" in msg
    assert "pick another directory or pass --force-new" in msg
    fresh = RunDir.create(str(tmp_path), "exp", config=Toy(lr=0.1), force_new=True)
    assert fresh.path.endswith("exp-2") and not fresh.resumed and fresh.config["lr"] == 0.1
    assert os.path.exists(os.path.join(tmp_path, "exp", "config.json"))  # nothing deleted

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    with pytest.raises(DataError, match="not a run directory"):
        RunDir.create(str(tmp_path), "junk", config=Toy())
    (tmp_path / "empty").mkdir()
    assert not RunDir.create(str(tmp_path), "empty", config=Toy()).resumed


@dataclass(frozen=True)
class Inner:
    k: int = field_doc(1, "A positive number.")

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    def validate(self) -> None:
        if self.k == 13:
            raise ValueError("k=13 is unlucky")


@dataclass(frozen=True)
class Outer:
    inner: Inner = field_doc(Inner(k=2), "A nested group with a non-default default.")
    weights: dict[str, float] = field_doc({"pass": 1.0}, "Reward weights.")
    note: str | None = field_doc(None, "Optional note.")


def test_frozen_post_init_and_nested_validate():
    assert load_config(Outer, None, []).inner.k == 2
    assert "inner.k: int = 2" in config_help(Outer)
    cfg = load_config(Outer, None, ["weights={pass: 1, style: 0.5}", "note=hi"])
    assert cfg.weights == {"pass": 1.0, "style": 0.5} and cfg.note == "hi"
    assert load_config(Outer, None, ["note=none"]).note is None
    with pytest.raises(DataError, match=r"^invalid config: k must be >= 1, got 0$"):
        load_config(Outer, None, ["inner.k=0"])
    with pytest.raises(DataError, match=r"^inner\.k=13 is unlucky$"):
        load_config(Outer, None, ["inner.k=13"])
    with pytest.raises(DataError, match=r"weights=x: expected dict\[str, float\]"):
        load_config(Outer, None, ["weights=x"])


def test_bound_checks_name_the_first_bad_key_and_its_value():
    from types import SimpleNamespace

    from execrl.training.config import check_at_least, check_positive

    cfg = SimpleNamespace(a=1, b=0, c=-1, lr=0.0, nan=float("nan"), n=15)
    check_at_least(cfg, 1, "a")
    check_at_least(cfg, 0, "a", "b")
    for call, message in [
        (lambda: check_at_least(cfg, 1, "a", "b", "c"), "b=0: must be at least 1"),
        (lambda: check_at_least(cfg, 0, "b", "c"), "c=-1: must be 0 or more"),
        (lambda: check_at_least(cfg, 16, "n"), "n=15: must be at least 16"),
        (lambda: check_positive(cfg, "a", "lr"), "lr=0.0: must be positive"),
        (lambda: check_positive(cfg, "nan"), "nan=nan: must be positive"),
    ]:
        with pytest.raises(DataError) as err:
            call()
        assert str(err.value) == message
