"""Isolation layers: detect what this machine allows and enter the strongest set.

Layers are entered by the worker before it forks its zygote, so every untrusted process
starts inside them. Each layer reports ``(on, note)``; ``execrl sandbox doctor`` prints them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from execrl.sandbox import _linux as L

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc", "/opt")
DEVICES = ("null", "zero", "full", "random", "urandom")
UNTRUSTED_UID_BASE = 100_000_000  # far above real accounts; < 2**32 with the offsets below

LAYER_DOCS = {
    "user_namespace": "own user namespace (non-root path to the other namespaces)",
    "network_namespace": "no network: only a loopback interface, down",
    "mount_namespace": "minimal read-only root, benchmark data hidden",
    "scratch_tmpfs": "private size-capped tmpfs as /tmp, wiped after every run",
    "pid_namespace": "own pid space; its init kills the whole tree after each run",
    "unprivileged": "untrusted code runs without privileges (own uid, or all capabilities dropped)",
    "no_new_privs": "setuid binaries cannot raise privileges",
    "seccomp": "kernel-attack and escape syscalls (ptrace, mount, bpf, ...) refused",
    "rlimits": "CPU time, address space, file size, processes, open files",
    "cgroup": "one memory cgroup per worker: the run's total RAM (all processes, files, memfds)",
    "scrubbed_env": "the untrusted process sees a fixed, minimal environment",
    "tree_kill": "everything the program started is killed when the run ends",
}

Layers = dict[str, tuple[bool, str]]


def _bind_targets() -> list[str]:
    """Directories the untrusted side needs to run Python: system dirs plus the interpreter's."""
    paths = [p for p in SYSTEM_DIRS if os.path.lexists(p)]
    extra = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    extra.update(p for p in sys.path if p and os.path.isdir(p))
    keep: list[str] = []
    for p in sorted({os.path.realpath(p) for p in extra}):
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in keep + paths):
            keep.append(p)
    return paths + keep


def _bind(src: str, root: str, *, readonly: bool = True) -> None:
    dst = root + src
    if os.path.islink(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.lexists(dst):
            os.symlink(os.readlink(src), dst)
        return
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    L.mount(src, dst, None, L.MS_BIND | L.MS_REC)
    if readonly:
        base = L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY
        try:
            L.mount("none", dst, None, base | L.MS_NOSUID | L.MS_NODEV)
        except OSError:
            L.mount("none", dst, None, base | L.MS_NOSUID)


def _hide(path: str, root: str) -> None:
    dst = root + os.path.realpath(path)
    if not os.path.lexists(dst):
        return
    if os.path.isdir(dst):
        L.mount("tmpfs", dst, "tmpfs", L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV, "size=4k,mode=555")
    else:
        L.mount("/dev/null", dst, None, L.MS_BIND)


def _build_root(scratch_mb: int, hide: list[str]) -> None:
    """Private mount tree: tmpfs root, read-only binds, tmpfs /tmp, a few device nodes."""
    targets = _bind_targets()
    L.mount("none", "/", None, L.MS_REC | L.MS_PRIVATE)
    # Stage the new root on a directory none of the binds comes from (mounting over it
    # would hide them).
    root = next(
        d
        for d in ("/mnt", "/srv", "/media", "/dev/shm", "/tmp")
        if os.path.isdir(d) and not any(t == d or t.startswith(d + "/") for t in targets)
    )
    L.mount("tmpfs", root, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=1m,mode=755")
    for d in ("/dev/shm", "/proc", "/tmp"):
        os.makedirs(root + d)
    # Scratch first: an interpreter installed under /tmp (a venv in a temp checkout) is then
    # bound on top of it, on a read-only skeleton the program cannot write into.
    L.mount("tmpfs", root + "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"size={scratch_mb}m,mode=1777")
    L.mount("tmpfs", root + "/dev/shm", "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=16m,mode=1777")
    skeletons = sorted({"/tmp/" + t[len("/tmp/"):].split("/")[0] for t in targets if t.startswith("/tmp/")})
    for sk in skeletons:
        os.mkdir(root + sk)
        L.mount("tmpfs", root + sk, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=64k,mode=755")
    for path in targets:
        _bind(path, root)
    for path in hide:
        _hide(path, root)
    for sk in skeletons:
        L.mount("none", root + sk, None, L.MS_REMOUNT | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)
    for dev in DEVICES:
        if os.path.exists("/dev/" + dev):
            _bind("/dev/" + dev, root, readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.mkdir(root + "/.old")
    os.chdir(root)
    L.pivot_root(".", ".old")
    os.chdir("/")
    # The old root stays attached until the zygote has mounted its own /proc: inside a user
    # namespace the kernel only allows a new proc while another one is fully visible.


def finish_root(facts: dict[str, Any]) -> None:
    """Detach the old root and freeze the new one read-only (run in the zygote)."""
    if not facts.get("old_root"):
        return
    L.umount2("/.old", L.MNT_DETACH)
    os.rmdir("/.old")
    L.mount("none", "/", None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)


def _sweep_stale_scratch() -> None:
    """Remove scratch dirs of workers that died without cleaning up (no namespaces case)."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        parts = name.split("-")
        if len(parts) < 4 or not name.startswith("execrl-scratch-") or not parts[2].isdigit():
            continue
        path = os.path.join(base, name)
        try:
            if os.stat(path).st_uid != os.geteuid():
                continue
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


CGROUP_SLACK_MB = 32  # the interpreter's own pages copied after fork


def _cgroup_setup(cfg: dict[str, Any]) -> tuple[dict[str, int] | None, str]:
    """A memory cgroup for this worker's untrusted processes (v2, else v1), or why not.

    Created under the cgroup we already run in, so any limit set on us still applies. The
    fds are opened now, before the namespaces hide /sys."""
    name = f"execrl-{cfg.get('pool_pid', 0)}-{cfg.get('slot', 0)}"
    try:
        with open("/proc/self/cgroup") as f:
            lines = [ln.rstrip("\n").split(":", 2) for ln in f]
    except OSError:
        return None, "no /proc/self/cgroup"
    v2 = "/sys/fs/cgroup"
    candidates = []
    if os.path.exists(v2 + "/cgroup.controllers"):
        own = next((p for h, c, p in lines if h == "0"), "/")
        candidates.append(("v2", v2 + own.rstrip("/"), "memory.max", "memory.events"))
    for _h, ctrls, path in lines:
        if "memory" in ctrls.split(","):
            candidates.append(("v1", "/sys/fs/cgroup/memory" + path.rstrip("/"), "memory.limit_in_bytes", "memory.oom_control"))
    why = "no memory controller"
    for kind, parent, limit_file, events_file in candidates:
        if kind == "v2":
            try:
                with open(parent + "/cgroup.subtree_control") as f:
                    if "memory" not in f.read().split():
                        why = "memory controller not delegated to our cgroup"
                        continue
            except OSError:
                continue
        path = f"{parent}/{name}"
        try:
            _sweep_stale_cgroups(parent)
            os.makedirs(path, exist_ok=True)
            fds = {
                "procs": os.open(path + "/cgroup.procs", os.O_WRONLY),
                "limit": os.open(f"{path}/{limit_file}", os.O_WRONLY),
                "events": os.open(f"{path}/{events_file}", os.O_RDONLY),
            }
        except OSError as exc:
            why = f"cannot create a cgroup ({exc.strerror})"
            continue
        if kind == "v2":
            try:
                L.write_file(path + "/memory.swap.max", "0")
            except OSError:
                pass
        return {**fds, "path": path, "v2": kind == "v2"}, kind  # type: ignore[dict-item]
    return None, why


def _sweep_stale_cgroups(parent: str) -> None:
    for name in os.listdir(parent):
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "execrl" and parts[1].isdigit():
            try:
                os.kill(int(parts[1]), 0)
            except ProcessLookupError:
                try:
                    os.rmdir(os.path.join(parent, name))
                except OSError:
                    pass
            except OSError:
                pass


def set_cgroup_limit(cg: dict[str, Any], memory_mb: int) -> None:
    os.pwrite(cg["limit"], str((memory_mb + CGROUP_SLACK_MB) << 20).encode(), 0)


def cgroup_ooms(cg: dict[str, Any]) -> int:
    """How many processes the kernel has OOM-killed in the cgroup so far."""
    text = os.pread(cg["events"], 4096, 0).decode()
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def enter(cfg: dict[str, Any]) -> tuple[Layers, dict[str, Any]]:
    """Enter every layer this machine allows (before forking the zygote).

    Returns the layer report and the facts the zygote needs (uid to drop to, scratch dirs,
    whether it is a pid-namespace init).
    """
    layers: Layers = {}
    facts: dict[str, Any] = {"uid": None, "pid_ns": False, "scratch": [], "drop_caps": False}
    if cfg.get("isolation") == "none":
        for name in LAYER_DOCS:
            layers[name] = (False, "isolation disabled (isolation='none')")
        layers["rlimits"] = (True, "")
        layers["scrubbed_env"] = (True, "")
        return layers, facts

    is_root = os.geteuid() == 0
    cg, cg_note = _cgroup_setup(cfg)
    if cg is not None:
        set_cgroup_limit(cg, cfg.get("memory_mb", 1024))
        facts["cgroup"] = cg
        layers["cgroup"] = (True, f"{cg_note}, total memory per run")
    else:
        layers["cgroup"] = (False, f"{cg_note}: memory_mb then bounds each process, not the run")
    userns = False
    if is_root:
        layers["user_namespace"] = (True, "not needed: running as root")
    else:
        uid, gid = os.geteuid(), os.getegid()
        try:
            L.unshare(L.CLONE_NEWUSER)
            L.write_file("/proc/self/setgroups", "deny")
            L.write_file("/proc/self/uid_map", f"0 {uid} 1")
            L.write_file("/proc/self/gid_map", f"0 {gid} 1")
            userns = True
            layers["user_namespace"] = (True, "")
        except OSError as exc:
            layers["user_namespace"] = (False, f"unavailable ({exc.strerror})")
    can_ns = is_root or userns

    def try_layer(name: str, fn: Any) -> bool:
        if not can_ns:
            layers[name] = (False, "needs root or user namespaces")
            return False
        try:
            fn()
        except OSError as exc:
            layers[name] = (False, f"unavailable ({exc.strerror or exc})")
            return False
        layers[name] = (True, "")
        return True

    try_layer("network_namespace", lambda: L.unshare(L.CLONE_NEWNET))
    if try_layer("mount_namespace", lambda: L.unshare(L.CLONE_NEWNS)):
        try:
            _build_root(cfg["scratch_mb"], cfg.get("hide", []))
            layers["scratch_tmpfs"] = (True, f"{cfg['scratch_mb']} MiB")
            facts["scratch"] = ["/tmp", "/dev/shm"]
            facts["old_root"] = "/.old"
        except OSError as exc:
            layers["mount_namespace"] = (False, f"could not build the private root ({exc})")
            layers["scratch_tmpfs"] = (False, "no private root")
    else:
        layers["scratch_tmpfs"] = (False, "needs a mount namespace")
    for flag in (L.CLONE_NEWIPC, L.CLONE_NEWUTS):
        try:
            if can_ns:
                L.unshare(flag)
        except OSError:
            pass
    if try_layer("pid_namespace", lambda: L.unshare(L.CLONE_NEWPID)):
        facts["pid_ns"] = True
    if not facts["scratch"]:
        _sweep_stale_scratch()
        d = tempfile.mkdtemp(prefix=f"execrl-scratch-{os.getpid()}-")
        facts["scratch"] = [d]
        facts["scratch_owned"] = True
    if is_root:
        # One uid per worker of this pool, so RLIMIT_NPROC is not shared with other pools.
        facts["uid"] = UNTRUSTED_UID_BASE + (int(cfg.get("pool_pid", 0)) % (1 << 22)) * 256 + int(cfg.get("slot", 0)) % 256
        layers["unprivileged"] = (True, f"uid {facts['uid']}, no groups")
    elif userns:
        facts["drop_caps"] = True
        layers["unprivileged"] = (True, "your uid, all capabilities dropped (one uid mapped)")
    else:
        layers["unprivileged"] = (True, "your own uid (no namespaces: it can read what you can)")
    layers["no_new_privs"] = (True, "")
    layers["seccomp"] = (
        (True, "deny-list") if L.seccomp_supported() else (False, "unknown architecture")
    )
    layers["rlimits"] = (True, "")
    layers["scrubbed_env"] = (True, "")
    layers["tree_kill"] = (
        (True, "pid-namespace init") if facts["pid_ns"] else (True, "child subreaper (weaker)")
    )
    return layers, facts
