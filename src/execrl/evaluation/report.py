"""An HTML report of a results file: pass@k curve, status breakdown, per-task outcome grid."""

from __future__ import annotations

import base64
import html
import io
import os
from typing import Any

from execrl._jsonl import read_jsonl
from execrl.errors import DataError
from execrl.evaluation.evaluate import summarize

COLORS = {
    "passed": "#2e7d32", "failed": "#c62828", "error": "#ef6c00", "syntax_error": "#6a1b9a",
    "timeout": "#1565c0", "memory_limit": "#00838f", "output_limit": "#4e342e", "crashed": "#212121",
    "sandbox_error": "#9e9e9e",
}


def _figure_png(summary: Any, min_n: int) -> bytes:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        raise DataError("execrl report draws its plots with matplotlib: pip install 'execrl[report]'") from None
    from execrl.evaluation.passk import pass_at_k_table

    ks = list(range(1, min_n + 1))
    counts = {t: (d["n"], d["correct"]) for t, d in summary.per_task.items()}
    curve = pass_at_k_table(counts, ks)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    ax1.plot(ks, [curve[f"pass@{k}"] for k in ks], marker="o" if len(ks) < 30 else None, color=COLORS["passed"])
    ax1.set(xlabel="k (samples per task)", ylabel="pass@k", ylim=(0, 1.02), title="pass@k (unbiased estimate)")
    if len(ks) > 10:
        ax1.set_xscale("log")
    else:
        ax1.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax1.grid(alpha=0.3)
    names = list(summary.status_counts)
    ax2.barh(names, [summary.status_counts[n] for n in names], color=[COLORS.get(n, "#777") for n in names])
    ax2.invert_yaxis()
    ax2.set(xlabel="samples", title="verdicts")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_report(results_path: str, out_path: str, title: str | None = None) -> dict[str, str]:
    """Render ``results_path`` (as written by ``execrl eval``) to ``out_path`` (HTML) and a
    PNG of the plots beside it; returns both paths."""
    rows = [row for _, row in read_jsonl(results_path, ("task_id", "passed", "status"))]
    if not rows:
        raise DataError(f"{results_path}: no results in file")
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task_id"], []).append(r)
    min_n = min(len(v) for v in by_task.values())
    summary = summarize(rows, ks=[k for k in (1, 5, 10, 100) if k <= min_n])
    png = _figure_png(summary, min_n)
    png_path = os.path.splitext(out_path)[0] + ".png"
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(png_path, "wb") as f:
        f.write(png)
    title = title or f"execrl report: {os.path.basename(results_path)}"
    metrics = [(k, f"{v:.4f}") for k, v in summary.pass_at_k.items()]
    if summary.public_pass_at_1 is not None:
        metrics += [("public pass@1", f"{summary.public_pass_at_1:.4f}"),
                    ("public − hidden gap", f"{summary.public_hidden_gap:+.4f}")]
    metrics += [(f"status {k}", str(v)) for k, v in summary.status_counts.items()]
    order = sorted(by_task, key=lambda t: (-summary.per_task[t]["correct"] / summary.per_task[t]["n"], t))
    grid = []
    for t in order:
        cells = "".join(
            f'<td class="c" style="background:{COLORS.get(r["status"], "#777")}" '
            f'title="{html.escape(r["status"] + ": " + str(r.get("detail", ""))[:300])}"></td>'
            for r in sorted(by_task[t], key=lambda r: r.get("completion_id", 0))
        )
        d = summary.per_task[t]
        grid.append(f"<tr><th>{html.escape(t)}</th><td>{d['correct']}/{d['n']}</td>{cells}</tr>")
    legend = "".join(f'<span class="k" style="background:{c}"></span>{html.escape(s)} ' for s, c in COLORS.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 2px 8px; text-align: left; }}
.m td {{ border-bottom: 1px solid #ddd; }} .g th {{ font-weight: normal; font-family: monospace; }}
.c {{ width: 12px; height: 12px; padding: 0; border: 1px solid #fff; }}
.k {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{summary.samples} samples on {summary.tasks} tasks, from <code>{html.escape(results_path)}</code>.</p>
<table class="m">{"".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in metrics)}</table>
<h2>Plots</h2><img alt="pass@k and verdicts" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Per-task outcomes</h2><p>One cell per sample (hover for the verdict's detail); tasks by pass rate.</p>
<p>{legend}</p>
<table class="g">{"".join(grid)}</table>
</body></html>
"""
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(page)
    return {"html": out_path, "png": png_path}
