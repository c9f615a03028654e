"""What every recipe needs around its trainer: the model, the task split, and an honest
before/after evaluation through the sandbox."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import random
from typing import Any

from execrl._jsonl import read_done
from execrl.errors import DataError
from execrl.evaluation import evaluate, read_samples
from execrl.sandbox import SandboxPool
from execrl.tasks import Task, load_benchmark
from execrl.training._dist import CopiedError, is_main_process, processes, world_size
from execrl.training.config import RunDir, check_at_least, check_local_path, field_doc

TINY = "tiny"  # the model spec that builds the local tiny Llama (execrl.training.tiny)


def open_run(cfg: Any, recipe: str, force_new: bool = False) -> RunDir:
    """The run directory of ``cfg`` (:meth:`RunDir.create`). With several processes the main
    one creates or reopens it and the others get the same directory, not writing to it."""
    procs = processes()
    if procs.size == 1:
        return RunDir.create(cfg.output_dir, cfg.run_name, cfg, recipe=recipe, force_new=force_new)
    run: RunDir | None = None

    def create() -> tuple[str, dict[str, Any], bool]:
        nonlocal run
        run = RunDir.create(cfg.output_dir, cfg.run_name, cfg, recipe=recipe, force_new=force_new)
        return run.path, run.config, run.resumed

    path, data, resumed = procs.on_main(create)
    return run if run is not None else RunDir(path, data, resumed=resumed, writes=False)


def single_process(what: str) -> None:
    """A one-line error, before any work, when ``what`` (the demo) is launched as several
    processes (``accelerate launch``/``torchrun`` with more than one)."""
    if world_size() > 1:
        error = DataError if is_main_process() else CopiedError  # said once, by the main process
        raise error(f"{what} runs in one process (this launch has WORLD_SIZE={world_size()}); run it without "
                    "accelerate launch/torchrun (the recipes, execrl train RECIPE, run on several)")


def sandbox_pool() -> SandboxPool:
    """A sandbox pool for this process: a worker per core, the cores split between the
    processes of a multi-process run on this machine. Workers start at its first run (or `with`)."""
    procs = processes()
    return SandboxPool(procs.cores() if procs.size > 1 else None)


def resolve_model(spec: str, run: RunDir, seed: int = 0) -> str:
    """A model path or hub id; ``tiny`` builds the tiny local model once per run directory
    (by the main process when there are several)."""
    if spec != TINY:
        return spec
    path = os.path.join(run.path, "tiny-base")

    def build() -> str:
        if not os.path.exists(os.path.join(path, "config.json")):
            from execrl.training.tiny import make_tiny_model

            make_tiny_model(path, seed=seed)
        return path

    return processes().on_main(build)


def split_tasks(benchmark: str, problems: str | None, eval_tasks: int, seed: int,
                limit: int | None = None, skip: int = 0) -> tuple[dict[str, Task], dict[str, Task]]:
    """(train, held-out) tasks from one seeded shuffle: the last ``eval_tasks`` are held out
    whatever ``limit`` and ``skip`` say, so runs that train on different tasks of a benchmark
    are measured on the same held-out ones; train is the rest, less its first ``skip``, at
    most ``limit``."""
    tasks = load_benchmark(benchmark, problems)
    ids = sorted(tasks)
    random.Random(seed).shuffle(ids)
    cut = len(ids) - eval_tasks
    held, rest = ids[cut:], ids[:cut][skip:]
    train = rest if limit is None else rest[:limit]
    return {t: tasks[t] for t in train}, {t: tasks[t] for t in held}


def evaluate_model(model: str, tasks: dict[str, Task], out_dir: str, *, n: int = 1, temperature: float = 0.0,
                   max_new_tokens: int = 128, ks: tuple[int, ...] = (1,), pool: SandboxPool | None = None,
                   seed: int = 0, chat: bool | None = None, generator: str = "hf",
                   batch_size: int = 32) -> dict[str, Any]:
    """pass@k of ``model`` on ``tasks``: sample with ``generator`` (``hf`` or ``vllm``),
    extract, run in the sandbox. Samples and verdicts are written under ``out_dir`` (resumable)."""
    from execrl.generation import SamplingParams

    samples = os.path.join(out_dir, "samples.jsonl")
    params = SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    sample_tasks(model, tasks, samples, params, chat=chat, generator=generator, batch_size=batch_size)

    def judge() -> dict[str, Any]:
        rows = read_samples(samples, tasks, extract=True)
        s = evaluate(tasks, rows, os.path.join(out_dir, "results.jsonl"), pool=pool, ks=ks, progress=False)
        return {**s.pass_at_k, "status_counts": s.status_counts}

    return processes().on_main(judge)


def sample_tasks(model: str, tasks: dict[str, Task], path: str, params: Any, *, chat: bool | None,
                 generator: str = "hf", batch_size: int = 32) -> None:
    """:func:`~execrl.generation.generate_samples` of ``model`` on ``tasks`` into ``path``
    (resumable), split over the processes of a multi-process run: each samples its share
    of the tasks on its own device into ``path.rank<r>``, then the main process merges the
    shards in task order. Every process returns once ``path`` is complete."""
    from execrl.generation import generate_samples
    from execrl.generation._backends import make_backend

    procs = processes()
    kw: dict[str, Any] = {"batch_size": batch_size} if generator == "hf" else {}
    if generator == "hf" and procs.device:
        kw["device"] = procs.device
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)

    def sample(target: str, task_ids: list[str] | None = None) -> None:
        generate_samples(make_backend(f"{generator}:{model}", chat=chat, **kw), tasks, target, params,
                         task_ids=task_ids, progress=False)

    if procs.size == 1:
        sample(path)
        return
    if os.path.exists(path):  # merged before (or written by a one-process run): the main one completes it
        procs.on_main(lambda: sample(path))
        return
    mine = f"{path}.rank{procs.rank}"
    sample(mine, procs.shard(list(tasks)))
    procs.wait()

    procs.on_main(lambda: merge_shards(path, list(tasks)))


def merge_shards(path: str, task_ids: list[str]) -> int:
    """Write every ``path.rank<r>`` shard's rows into ``path`` (atomically), in ``task_ids``
    order then completion id, and delete the shards; returns the rows written. Every shard
    there is counts: one left by an interrupted run with another number of processes holds
    other tasks, and may repeat a (task, completion) another shard has (kept once); rows of
    tasks not in ``task_ids`` are dropped."""
    shards = sorted(glob.glob(glob.escape(path) + ".rank*"))
    order = {tid: i for i, tid in enumerate(task_ids)}
    rows = {(r["task_id"], r["completion_id"]): r for shard in shards for r in read_done(shard)
            if r.get("task_id") in order and isinstance(r.get("completion_id"), int)}
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(rows[key]) + "\n" for key in sorted(rows, key=lambda k: (order[k[0]], k[1])))
    os.replace(path + ".tmp", path)
    for shard in shards:
        os.remove(shard)
    return len(rows)


# --------------------------------------------------------------------- what recipes share

REPORT_TO = ("none", "tensorboard", "wandb")
GENERATORS = ("hf", "vllm")


def require_module(module: str, what: str, hint: str) -> None:
    """For ``validate()``: a one-line error, before any work, when ``what`` needs ``module``
    and it is not installed; ``hint`` says how to get it."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DataError(f"{what} needs {hint}")


def require_vllm(what: str) -> None:
    """:func:`require_module` for vLLM."""
    require_module("vllm", what, "vllm (and a GPU): pip install 'execrl[vllm]'")


@dataclasses.dataclass
class RunConfig:
    """The settings every recipe shares; a recipe's ``Config`` extends it (and may give a
    field another default by declaring it again)."""

    model: str = field_doc(TINY, "model to train: 'tiny' (built locally), a hub id or a local path (e.g. <run>/final)")
    benchmark: str = field_doc("execrl-basic", "benchmark whose tasks are split into train and held-out sets")
    problems: str | None = field_doc(None, "read the benchmark from this file instead of its default source")
    output_dir: str = field_doc("runs", "directory that holds run directories")
    run_name: str | None = field_doc(None, "run directory name under output_dir (default: <recipe>-<time>); same name and config resumes")
    limit: int | None = field_doc(None, "number of train tasks (None: every task not held out)")
    skip: int = field_doc(0, "leave out the first N train tasks of the split (e.g. the ones an earlier stage trained on)")
    eval_tasks: int = field_doc(20, "held-out tasks evaluated before and after training (0: none)")
    seed: int = field_doc(0, "seed of the task split, the tiny model, training and sampling")
    lora: bool = field_doc(False, "train a LoRA adapter (peft) instead of every weight; merged into final/")
    lora_r: int = field_doc(16, "LoRA rank (with lora=true)")
    lora_alpha: int = field_doc(32, "LoRA scaling alpha (with lora=true)")
    eval_samples: int = field_doc(1, "samples per held-out task (n of pass@k)")
    eval_temperature: float = field_doc(0.0, "sampling temperature of the evaluations (0: greedy)")
    eval_max_new_tokens: int = field_doc(96, "max new tokens per evaluation sample")
    report_to: str = field_doc("none", "extra trainer logging: none, tensorboard or wandb (metrics.jsonl is always written)")
    generator: str = field_doc("hf", "backend of the evaluations' sampling: hf (transformers) or vllm (GPU, pip install vllm)")
    eval_batch_size: int = field_doc(32, "sequences per generation batch of the evaluations (hf)")

    def validate(self) -> None:
        check_local_path("model", self.model)
        check_local_path("problems", self.problems)
        check_at_least(self, 1, "eval_samples", "eval_max_new_tokens", "lora_r", "lora_alpha", "eval_batch_size")
        if self.limit is not None and self.limit < 1:
            raise DataError(f"limit={self.limit}: must be at least 1 (or none for every task)")
        check_at_least(self, 0, "skip", "eval_tasks", "eval_temperature")
        if self.report_to not in REPORT_TO:
            raise DataError(f"report_to={self.report_to!r}: choose one of {', '.join(REPORT_TO)}")
        if self.report_to != "none":
            require_module(self.report_to, f"report_to={self.report_to}", f"{self.report_to}: pip install {self.report_to}")
        if self.generator not in GENERATORS:
            raise DataError(f"generator={self.generator!r}: choose one of {', '.join(GENERATORS)}")
        if self.generator == "vllm":
            require_vllm("generator=vllm")


def _checkpointing_key() -> str:
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def trainer_settings(cfg: RunConfig) -> dict[str, Any]:
    """TrainingArguments every recipe sets the same way: CPU-friendly precision, a log line
    per step, no progress bar (metrics.jsonl is the record)."""
    import torch

    on_cpu = not torch.cuda.is_available()
    return {
        "seed": cfg.seed,
        "use_cpu": on_cpu,
        "bf16": False if on_cpu else None,  # TRL configs default to bf16; CPUs and the tiny model want fp32
        "fp16": False,
        "logging_steps": 1,
        "report_to": cfg.report_to,
        "disable_tqdm": True,
        # saves GPU memory; on CPU it only costs time. TRL's configs default it to on, so say so
        # either way, under the name this transformers knows (5.x renamed it, warning on the old).
        _checkpointing_key(): not on_cpu,
    }


def peft_config(cfg: RunConfig) -> Any:
    """A LoRA config when ``cfg.lora``, else None."""
    if not cfg.lora:
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        raise ImportError("lora=true needs peft: pip install peft") from None
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM")


def metrics_callback(run: RunDir) -> Any:
    """A TrainerCallback appending every trainer log entry to the run's ``metrics.jsonl``."""
    from transformers import TrainerCallback

    class ToMetrics(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and state.is_world_process_zero:
                run.log(dict(logs), step=state.global_step)

    return ToMetrics()


class _TensorBoard:
    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir)

    def log(self, scalars: dict[str, float], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _WandB:
    def __init__(self, run: RunDir) -> None:
        import wandb

        self.run = wandb.init(project="execrl", name=os.path.basename(run.path), dir=run.path, config=run.config,
                              resume="allow")

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()


def mirror_metrics(cfg: RunConfig, run: RunDir) -> None:
    """For recipes with their own training loop (TRL trainers do this themselves): every
    ``run.log`` line also goes to TensorBoard (``<run>/runs/``) or W&B, as ``report_to`` says
    (by the process that writes the run: the main one when there are several)."""
    if not run.writes:
        return
    if cfg.report_to == "tensorboard":
        run.mirrors.append(_TensorBoard(os.path.join(run.path, "runs")))
    elif cfg.report_to == "wandb":
        run.mirrors.append(_WandB(run))


def show_progress(trainer: Any, desc: str) -> Any:
    """Replace the trainer's console output (a dict printed per log step) with one progress
    bar showing the latest loss and reward; metrics.jsonl keeps every value. Returns ``trainer``."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class Bar(TrainerCallback):
        bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=desc, unit="step")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            shown = {k: f"{v:.3g}" for k, v in (logs or {}).items() if k in ("loss", "reward") and isinstance(v, float)}
            if self.bar is not None and shown:
                self.bar.set_postfix(shown)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(Bar())
    return trainer


def save_final(trainer: Any, path: str, lora: bool) -> str:
    """Save a plain model (LoRA merged) and its tokenizer that ``from_pretrained`` loads.
    With several processes every one must call this: the trainer gathers sharded weights
    (DeepSpeed, FSDP) and the main process writes; all return once ``path`` is written."""
    procs = processes()
    if not lora:
        trainer.save_model(path)  # the trainer's own save: main-process only, gathers shards, writes the tokenizer
    elif procs.is_main:
        model = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        model.save_pretrained(path)
        trainer.processing_class.save_pretrained(path)
    procs.wait()
    return path


def held_out_evaluator(cfg: RunConfig, run: RunDir, held_out: dict[str, Task], pool: SandboxPool,
                       chat: bool | None) -> Any:
    """``evaluate(model, name) -> pass@k dict`` on the held-out tasks, written under
    ``<run>/<name>/`` ({} when nothing is held out)."""
    ks = tuple(k for k in (1, 5, 10) if k <= cfg.eval_samples)

    def evaluate(model: str, name: str) -> dict[str, Any]:
        if not held_out:
            return {}
        return evaluate_model(model, held_out, os.path.join(run.path, name), n=cfg.eval_samples,
                              temperature=cfg.eval_temperature, max_new_tokens=cfg.eval_max_new_tokens,
                              ks=ks, pool=pool, seed=cfg.seed, chat=chat, generator=cfg.generator,
                              batch_size=cfg.eval_batch_size)

    return evaluate
