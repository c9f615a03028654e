"""The demo's RL gain against its run-to-run noise: ``execrl demo`` for several seeds, side by
side with the same pipeline stopped before GRPO (the SFT stage of the same run).

    python bench/demo_seeds.py                    # seeds 0 1 2, runs under bench/results/demo-seeds/
    python bench/demo_seeds.py --seeds 0 1 2 3 4 -- grpo_steps=300

Each seed changes everything random: the drawn tests, the split, the corpus and its bugs, the
model's initialisation, training order and sampling. The gain is GRPO's held-out pass@1 minus
SFT's within each run (the same held-out tasks). Two noises are printed beside it: the
measurement noise (the SFT model of each run evaluated again with ``--resamples`` other sampling
seeds: the spread of pass@1 for one model) and the spread of a stage's pass@1 across seeds
(which also holds how hard each seed's split is). Reruns reuse finished runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _resample(out: str, summary: dict, n: int) -> list[float]:
    """pass@1 of the run's SFT model on its held-out tasks, sampled again with seeds 1..n."""
    from transformers.utils import logging as hf_logging

    from execrl.sandbox import SandboxPool
    from execrl.training._common import evaluate_model, split_tasks

    hf_logging.disable_progress_bar()
    with open(os.path.join(out, "sft", "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    _, held = split_tasks(cfg["benchmark"], cfg["problems"], cfg["eval_tasks"], cfg["seed"])
    model = os.path.join(out, "sft", "final")
    with SandboxPool() as pool:
        return [evaluate_model(model, held, os.path.join(out, f"sft-resample-{k}"), n=cfg["eval_samples"],
                               temperature=cfg["eval_temperature"], max_new_tokens=cfg["eval_max_new_tokens"],
                               ks=(1,), pool=pool, seed=k, chat=False)["pass@1"] for k in range(1, n + 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=os.path.join(HERE, "results", "demo-seeds"))
    ap.add_argument("--resamples", type=int, default=3, help="extra evaluations of each SFT model (sampling seeds)")
    ap.add_argument("overrides", nargs="*", help="key=value options passed to every execrl demo run")
    args = ap.parse_args()
    execrl = shutil.which("execrl") or os.path.join(os.path.dirname(sys.executable), "execrl")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    rows = []
    for seed in args.seeds:
        out = os.path.join(args.out, f"seed-{seed}")
        t0 = time.perf_counter()
        p = subprocess.run([execrl, "demo", f"seed={seed}", f"out={out}", *args.overrides],
                           capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"seed {seed}: execrl demo failed: {p.stderr.strip().splitlines()[-1]}")
        with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
            s = json.load(f)
        stage = {st["stage"]: st for st in s["stages"]}
        rows.append({"seed": seed, "wall": time.perf_counter() - t0, "total": s["seconds"]["total"],
                     **{f"{name}@{k}": stage[name][f"pass@{k}"] for name in stage for k in (1, 5)}})
        r = rows[-1]
        r["SFT@1 resampled"] = _resample(out, s, args.resamples)
        print(f"seed {seed}: pre-trained {r['pre-trained@1']:.3f}  SFT {r['SFT@1']:.3f}  GRPO {r['GRPO@1']:.3f}  "
              f"gain {r['GRPO@1'] - r['SFT@1']:+.3f}  ({r['total']:.0f} s); SFT model resampled: "
              + " ".join(f"{x:.3f}" for x in r["SFT@1 resampled"]), flush=True)

    def spread(key: str) -> tuple[float, float]:
        xs = [r[key] for r in rows]
        return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0

    print(f"\n{'held-out':<12}{'pass@1 mean ± sd':>20}{'pass@5 mean ± sd':>20}")
    for name in ("pre-trained", "SFT", "GRPO"):
        (m1, s1), (m5, s5) = spread(f"{name}@1"), spread(f"{name}@5")
        print(f"{name:<12}{m1:>13.3f} ± {s1:.3f}{m5:>13.3f} ± {s5:.3f}")
    gains = [r["GRPO@1"] - r["SFT@1"] for r in rows]
    g_mean = statistics.mean(gains)
    g_sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
    # one model's pass@1 measured several times: pooled sd of each run's SFT evaluations
    groups = [[r["SFT@1"], *r["SFT@1 resampled"]] for r in rows]
    pooled = [x - statistics.mean(g) for g in groups for x in g]
    dof = sum(len(g) - 1 for g in groups)
    measure_sd = (sum(d * d for d in pooled) / dof) ** 0.5 if dof else 0.0
    across = max(spread("SFT@1")[1], spread("GRPO@1")[1])
    print(f"\nRL gain in pass@1 (GRPO - SFT, same run): {g_mean:+.3f} ± {g_sd:.3f} (sd) over {len(gains)} seeds, "
          f"min {min(gains):+.3f}, {sum(g > 0 for g in gains)}/{len(gains)} positive")
    print(f"measurement noise: sd of one model's pass@1 over sampling seeds {measure_sd:.3f} "
          f"(so of a difference of two measurements {measure_sd * 2 ** 0.5:.3f}); "
          f"mean gain / that = {g_mean / (measure_sd * 2 ** 0.5) if measure_sd else float('inf'):.1f}")
    print(f"spread across seeds of a stage's pass@1 (largest sd, includes each split's difficulty): {across:.3f}")
    print(f"demo time per seed (a resumed run only redoes what is missing): median {statistics.median(r['total'] for r in rows):.0f} s, "
          f"max {max(r['total'] for r in rows):.0f} s")


if __name__ == "__main__":
    main()
