"""Running recipes as a user does: the installed ``execrl train`` command, in a subprocess."""

import json
import os
import shutil
import subprocess
import sys

EXECRL = shutil.which("execrl") or os.path.join(os.path.dirname(sys.executable), "execrl")


def train(recipe: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([EXECRL, "train", recipe, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def jsonl(path):
    return [json.loads(x) for x in open(path, encoding="utf-8")]


def assert_config_error(recipe: str, overrides: list[str], words: list[str], tmp_path) -> None:
    """A bad config: exit 2, one line naming the problem, and no work done (no run directory)."""
    p = train(recipe, *overrides, f"output_dir={tmp_path}", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words) and "Traceback" not in p.stderr, p.stderr
    assert os.listdir(tmp_path) == []
