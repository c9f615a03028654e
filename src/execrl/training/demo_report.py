"""The demo's report: held-out pass@k per stage, GRPO's reward, pass-rate and verdict curves per
step, the pre-training loss; one PNG and an HTML page that embeds it."""

from __future__ import annotations

import base64
import html
import json
import os
from typing import Any

from execrl.errors import DataError
from execrl.evaluation.report import COLORS


def _grpo_rows(run: str | None) -> list[dict[str, Any]]:
    if not run or not os.path.exists(os.path.join(run, "metrics.jsonl")):
        return []
    with open(os.path.join(run, "metrics.jsonl"), encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if "reward" in r]


def _smooth(ys: list[float], window: int = 10) -> list[float]:
    """Trailing moving mean (shorter at the start)."""
    return [sum(ys[max(0, i - window + 1): i + 1]) / (i + 1 - max(0, i - window + 1)) for i in range(len(ys))]


def _figure(summary: dict[str, Any], rows: list[dict[str, Any]], losses: list[float], png_path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("the demo report draws its plots with matplotlib: pip install 'execrl[report]'") from None
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), dpi=110)
    (ax_stage, ax_reward), (ax_status, ax_loss) = axes

    stages = summary["stages"]
    names = [s["stage"] for s in stages]
    width = 0.38
    for j, k in enumerate(("pass@1", "pass@5")):
        xs = [i + (j - 0.5) * width for i in range(len(stages))]
        bars = ax_stage.bar(xs, [s.get(k, 0.0) for s in stages], width, label=k,
                            color=("#2e7d32", "#81c784")[j])
        ax_stage.bar_label(bars, fmt="%.2f", fontsize=8)
    ax_stage.set_xticks(range(len(stages)), names)
    ax_stage.set(ylim=(0, 1.15), ylabel="held-out pass@k", title=f"{summary['held_out_tasks']} held-out tasks")
    ax_stage.legend(loc="upper left", ncols=2)

    if rows:
        steps = [r["step"] for r in rows]
        reward = next((k[len("execrl/"):-len("/pass_rate")] for k in rows[0] if k.endswith("/pass_rate")), None)
        curves = {"mean reward": [r["reward"] for r in rows]}
        if reward and any(r[f"execrl/{reward}/pass_rate"] != r["reward"] for r in rows):
            curves["pass rate"] = [r[f"execrl/{reward}/pass_rate"] for r in rows]
        for (label, ys), color in zip(curves.items(), ("#1565c0", "#2e7d32"), strict=False):
            ax_reward.plot(steps, ys, color=color, alpha=0.25, linewidth=0.8)
            ax_reward.plot(steps, _smooth(ys), color=color, linewidth=2, label=f"{label} (moving mean of 10)")
        if reward:
            statuses = [s for s in COLORS if any(r.get(f"execrl/{reward}/status/{s}", 0) for r in rows)]
            ax_status.stackplot(steps, *[_smooth([r.get(f"execrl/{reward}/status/{s}", 0.0) for r in rows]) for s in statuses],
                                labels=statuses, colors=[COLORS[s] for s in statuses], alpha=0.85)
            ax_status.legend(loc="lower left", fontsize=8)
        ax_reward.set(xlabel="GRPO step", title="GRPO rollouts (train tasks)")
        ax_reward.legend()
        ax_status.set(xlabel="GRPO step", ylabel="share of rollouts", ylim=(0, 1), title="verdicts per step (moving mean of 10)")
    else:
        for ax in (ax_reward, ax_status):
            ax.text(0.5, 0.5, "no GRPO stage", ha="center", va="center")
    ax_loss.plot(range(1, len(losses) + 1), losses, color="#6a1b9a")
    ax_loss.set(xlabel="pre-training step", ylabel="loss", yscale="log", title="pre-training loss")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


def write_demo_report(summary: dict[str, Any], grpo_run: str | None, out_path: str, losses: list[float]) -> dict[str, str]:
    """Write ``out_path`` (HTML) and the PNG beside it; returns both paths."""
    png_path = os.path.splitext(out_path)[0] + ".png"
    _figure(summary, _grpo_rows(grpo_run), losses, png_path)
    with open(png_path, "rb") as f:
        png = base64.b64encode(f.read()).decode()
    keys = [k for k in ("pass@1", "pass@5") if any(k in s for s in summary["stages"])]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["stage", *keys, "verdicts"])
    body = "".join(
        "<tr><td>{}</td>{}<td>{}</td></tr>".format(
            html.escape(s["stage"]), "".join(f"<td>{s[k]:.3f}</td>" for k in keys),
            html.escape(", ".join(f"{n} {c}" for n, c in s.get("status_counts", {}).items())))
        for s in summary["stages"])
    gain = summary.get("rl_gain") or {}
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>execrl demo</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }}</style>
</head><body>
<h1>execrl demo (seed {summary['seed']})</h1>
<p>A {summary['model_parameters']:,}-parameter Llama trained from scratch on CPU: pre-training, SFT, GRPO with
sandbox rewards. Every stage is evaluated on the same {summary['held_out_tasks']} held-out tasks
({summary['train_tasks']} train tasks).</p>
<table><tr>{head}</tr>{body}</table>
<p>RL gain: {html.escape(", ".join(f"{k} {v:+.3f}" for k, v in gain.items()) or "no GRPO stage")}.
Time: {html.escape(", ".join(f"{k} {v:.0f} s" for k, v in summary["seconds"].items()))}.</p>
<img alt="pass@k per stage, GRPO curves, pre-training loss" src="data:image/png;base64,{png}">
</body></html>
"""
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(page)
    return {"html": out_path, "png": png_path}
