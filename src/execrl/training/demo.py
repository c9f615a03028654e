"""The embedded default job: the whole pipeline on a laptop CPU, nothing downloaded.

1. **tasks**: the execrl-synth family (``execrl.tasks.synth``) written to ``<out>/tasks.jsonl``
   in execrl-basic's format and split (seeded) into train and held-out tasks;
2. **pre-train**: a byte-level BPE tokenizer and a tiny Llama trained from scratch on generated
   programs of the same family, a share of them with plausible bugs (a constant off by one,
   an operator swapped), as code in the wild has. No held-out task's template-and-constants
   combination appears in the corpus;
3. **SFT** on the reference solutions of the first ``sft_tasks`` train tasks (``execrl train sft``);
4. **GRPO** on the other train tasks, with the sandbox's pass/fail verdicts on their tests as
   the only signal: no reference solution of theirs is used (``execrl train grpo``);
5. **evaluation** after every stage on the same held-out tasks: ``eval_samples`` samples per
   task at ``eval_temperature``, run against the hidden tests, pass@1 and pass@5 (unbiased);
6. **report**: ``<out>/report.html`` and ``report.png`` (pass@k per stage, GRPO's reward and
   pass-rate curves, the verdict breakdown per step), ``<out>/summary.json``, and the table.

Every stage is a directory under ``<out>`` and is skipped when already done, so an
interrupted demo resumes where it stopped.

    execrl demo                       # about 5 minutes on 2 cores
    execrl demo seed=1 out=runs/demo-1
    execrl demo grpo_steps=0          # the pipeline without RL, for comparison
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from typing import Any

from execrl.errors import DataError
from execrl.training.config import check_at_least, field_doc

__all__ = ["Config", "main"]


@dataclasses.dataclass
class Config:
    """Settings of ``execrl demo``; the defaults run on 2 CPU cores in about 5 minutes."""

    out: str = field_doc("runs/demo", "directory of the demo's stages, report and summary")
    seed: int = field_doc(0, "seed of the tasks, the split, the corpus, the model, training and sampling")
    eval_tasks: int = field_doc(40, "held-out tasks, evaluated after every stage")
    eval_samples: int = field_doc(10, "samples per held-out task (pass@1 and pass@5 are unbiased estimates from them)")
    eval_temperature: float = field_doc(0.8, "sampling temperature of the evaluations")
    corpus_size: int = field_doc(6000, "generated programs in the pre-training corpus")
    bug_rate: float = field_doc(0.3, "share of pre-training programs with a plausible bug")
    hidden: int = field_doc(64, "hidden size of the tiny Llama")
    layers: int = field_doc(2, "decoder layers of the tiny Llama")
    pretrain_steps: int = field_doc(600, "pre-training steps (batches of 32 programs)")
    pretrain_lr: float = field_doc(3e-3, "peak pre-training learning rate (warm-up, then linear decay)")
    sft_tasks: int = field_doc(60, "train tasks whose references SFT trains on; GRPO trains on the others")
    sft_steps: int = field_doc(40, "SFT steps on those references (0: skip the stage)")
    sft_lr: float = field_doc(1e-3, "SFT learning rate")
    grpo_steps: int = field_doc(200, "GRPO steps (0: skip the stage)")
    grpo_lr: float = field_doc(5e-4, "GRPO learning rate")
    grpo_generations: int = field_doc(8, "GRPO samples per task (the group)")
    grpo_batch: int = field_doc(32, "GRPO completions per step (a multiple of grpo_generations)")
    grpo_reward: str = field_doc("pass_all", "GRPO reward (see execrl train grpo --help)")

    def validate(self) -> None:
        check_at_least(self, 1, "eval_tasks", "sft_tasks", "eval_samples", "corpus_size", "hidden", "layers",
                       "pretrain_steps", "grpo_generations", "grpo_batch")
        check_at_least(self, 0, "sft_steps", "grpo_steps")
        if not 0.0 <= self.bug_rate < 1.0:
            raise DataError(f"bug_rate={self.bug_rate}: must be in [0, 1)")
        if self.eval_temperature <= 0:
            raise DataError(f"eval_temperature={self.eval_temperature}: must be positive (pass@k needs samples)")
        if self.hidden % 4:
            raise DataError(f"hidden={self.hidden}: must be a multiple of 4 (the attention heads)")
        if self.grpo_batch % self.grpo_generations:
            raise DataError(f"grpo_batch={self.grpo_batch} must be a multiple of grpo_generations={self.grpo_generations}")
        from execrl.tasks import synth

        train = synth.count() - self.eval_tasks
        if train < 1:
            raise DataError(f"eval_tasks={self.eval_tasks}: leaves no train task ({synth.count()} in all)")
        if not self.sft_steps and not self.grpo_steps:
            raise DataError("sft_steps=0 and grpo_steps=0: nothing to train")
        if self.sft_steps and self.grpo_steps and self.sft_tasks >= train:
            raise DataError(f"sft_tasks={self.sft_tasks} leaves no train task for GRPO ({train} in all)")


def _pretrain(cfg: Config, train_tasks: dict[str, Any], held_out: dict[str, Any], path: str) -> dict[str, Any]:
    """Tokenizer and tiny Llama trained from scratch on the corpus; saved to ``path``."""
    from execrl.tasks import synth
    from execrl.training import tiny

    info_path = os.path.join(path, "pretrain.json")
    if os.path.exists(info_path):
        with open(info_path, encoding="utf-8") as f:
            return json.load(f)
    held_keys = {t.metadata["tags"][2] for t in held_out.values()}
    corpus = synth.corpus(cfg.corpus_size, exclude=held_keys, seed=cfg.seed, bug_rate=cfg.bug_rate)
    t0 = time.perf_counter()
    tok = tiny.build_tokenizer(corpus + [t.prompt for t in train_tasks.values()])
    model = tiny.build_model(tok, hidden=cfg.hidden, layers=cfg.layers, seed=cfg.seed)
    losses = tiny.train_lm(model, tok, corpus, steps=cfg.pretrain_steps, batch_size=32, lr=cfg.pretrain_lr,
                           seed=cfg.seed, warmup=20, decay=True, clip=1.0, progress=True)
    tmp = path + ".tmp"
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    info = {"parameters": sum(p.numel() for p in model.parameters()), "corpus": len(corpus),
            "buggy_share": cfg.bug_rate, "loss_first": losses[0], "loss_last": losses[-1],
            "seconds": time.perf_counter() - t0, "losses": losses}
    with open(os.path.join(tmp, "pretrain.json"), "w", encoding="utf-8") as f:
        json.dump(info, f)
    if os.path.exists(path):
        import shutil

        shutil.rmtree(path)
    os.replace(tmp, path)
    return info


def _stage(path: str, run: Any) -> dict[str, Any]:
    """A recipe's summary: read from ``path`` when the stage finished before, else run it and
    save the summary there (so a rerun skips finished stages instead of reopening them)."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    summary = run()
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, default=str)
    os.replace(tmp, path)
    return summary


def _stage_common(cfg: Config, tasks_path: str) -> dict[str, Any]:
    """Recipe settings every stage shares, so all evaluate the same held-out tasks the same way."""
    return {"benchmark": "execrl-basic", "problems": tasks_path, "output_dir": cfg.out, "seed": cfg.seed,
            "eval_tasks": cfg.eval_tasks, "eval_samples": cfg.eval_samples,
            "eval_temperature": cfg.eval_temperature, "eval_max_new_tokens": 32}


def main(cfg: Config) -> dict[str, Any]:
    """Run (or resume) the demo; returns the summary also written to ``<out>/summary.json``."""
    import datasets
    from transformers.utils import logging as hf_logging

    from execrl.tasks import synth
    from execrl.training import grpo, sft
    from execrl.training._common import single_process, split_tasks

    single_process("execrl demo")
    hf_logging.disable_progress_bar()  # a bar per weight load, save and dataset pass would bury the stages' own
    datasets.disable_progress_bars()
    # TRL 1.16 asks transformers 5 for its old checkpointing names once per step; a FutureWarning
    # per step would bury the demo's own output (the library itself leaves warnings alone)
    warnings.filterwarnings("ignore", message=r".*_checkpointing.* is deprecated", category=FutureWarning)
    t0 = time.perf_counter()
    os.makedirs(cfg.out, exist_ok=True)
    tasks_path = os.path.join(cfg.out, "tasks.jsonl")
    if not os.path.exists(tasks_path):
        synth.write(tasks_path, synth.generate(seed=cfg.seed))
    train_tasks, held_out = split_tasks("execrl-basic", tasks_path, cfg.eval_tasks, cfg.seed)
    common = _stage_common(cfg, tasks_path)
    stages: list[dict[str, Any]] = []
    timings: dict[str, float] = {}

    # -- 1. pre-training from scratch
    print(f"[1/3] pre-training a tiny Llama on {cfg.corpus_size} generated programs", flush=True)
    t = time.perf_counter()
    base = os.path.join(cfg.out, "pretrain")
    pre = _pretrain(cfg, train_tasks, held_out, base)
    timings["pretrain"] = time.perf_counter() - t
    model = base

    # -- 2. SFT on references; its "before" evaluation is the pre-trained model's
    if cfg.sft_steps:
        print(f"[2/3] SFT on {min(cfg.sft_tasks, len(train_tasks))} reference solutions, {cfg.sft_steps} steps",
              flush=True)
        t = time.perf_counter()
        s = _stage(os.path.join(cfg.out, "sft", "stage.json"), lambda: sft.main(sft.Config(
            model=base, run_name="sft", limit=cfg.sft_tasks, max_steps=cfg.sft_steps, learning_rate=cfg.sft_lr,
            per_device_train_batch_size=16, save_steps=cfg.sft_steps, **common)))
        timings["sft"] = time.perf_counter() - t
        stages += [{"stage": "pre-trained", **s["before"]}, {"stage": "SFT", **s["after"]}]
        model = os.path.join(s["run"], "final")

    # -- 3. GRPO with execution rewards
    grpo_run = None
    if cfg.grpo_steps:
        rl_tasks = len(train_tasks) - (cfg.sft_tasks if cfg.sft_steps else 0)
        print(f"[3/3] GRPO on {rl_tasks} other tasks with sandbox rewards ({cfg.grpo_reward}), {cfg.grpo_steps} steps",
              flush=True)
        t = time.perf_counter()
        g = _stage(os.path.join(cfg.out, "grpo", "stage.json"), lambda: grpo.main(grpo.Config(
            model=model, run_name="grpo", skip=cfg.sft_tasks if cfg.sft_steps else 0, chat=False,
            rewards=[cfg.grpo_reward], max_steps=cfg.grpo_steps, learning_rate=cfg.grpo_lr,
            num_generations=cfg.grpo_generations, per_device_train_batch_size=cfg.grpo_batch,
            max_completion_length=24, temperature=1.0, save_steps=50, **common)))
        timings["grpo"] = time.perf_counter() - t
        if not stages:
            stages.append({"stage": "pre-trained", **g["before"]})
        stages.append({"stage": "GRPO", **g["after"]})
        grpo_run = g["run"]

    by_stage = {s["stage"]: s for s in stages}
    rl_gain = None
    if "GRPO" in by_stage:
        prior = stages[-2]
        rl_gain = {k: by_stage["GRPO"][k] - prior[k] for k in ("pass@1", "pass@5") if k in prior}
    summary = {
        "out": cfg.out, "seed": cfg.seed, "train_tasks": len(train_tasks), "held_out_tasks": len(held_out),
        "model_parameters": pre["parameters"], "stages": stages, "rl_gain": rl_gain,
        "seconds": {**timings, "total": time.perf_counter() - t0},
    }
    from execrl.training.demo_report import write_demo_report

    summary["report"] = write_demo_report(summary, grpo_run, os.path.join(cfg.out, "report.html"), pre["losses"])
    with open(os.path.join(cfg.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary
