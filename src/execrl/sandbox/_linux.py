"""Thin ctypes wrappers over the Linux calls the sandbox needs (no third-party deps).

Everything here is best effort and raises ``OSError`` on failure, so callers can decide
whether a missing layer is fatal or only worth a warning.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    nr = {"x86_64": 155, "aarch64": 41}.get(platform.machine())
    if nr is None:
        raise OSError(38, "pivot_root: unknown architecture")
    _check(_libc.syscall(ctypes.c_long(nr), new_root.encode(), put_old.encode()), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        _libc.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4),
            ctypes.c_ulong(arg5),
        ),
        f"prctl({option})",
    )


def drop_capabilities() -> None:
    """Empty the bounding set, lock out root's implicit capabilities, then clear our own."""
    last_cap = 40
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last_cap = int(f.read())
    except OSError:
        pass
    for cap in range(last_cap + 1):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            pass
    # SECBIT_NOROOT | NOROOT_LOCKED | NO_SETUID_FIXUP | its lock | KEEP_CAPS_LOCKED
    try:
        prctl(PR_SET_SECUREBITS, 0x1 | 0x2 | 0x4 | 0x8 | 0x20)
    except OSError:
        pass
    header = struct.pack("II", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)  # two (effective, permitted, inheritable) triples, all zero
    hbuf = ctypes.create_string_buffer(header, len(header))
    dbuf = ctypes.create_string_buffer(data, len(data))
    _check(_libc.capset(hbuf, dbuf), "capset")


def write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# --- seccomp: a small deny-list of syscalls no test program needs ----------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Syscalls that let a process reach outside its box or attack the kernel's attack surface.
_DENY = {
    "x86_64": {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
        "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
        "kexec_load": 246, "init_module": 175, "finit_module": 313, "delete_module": 176,
        "reboot": 169, "swapon": 167, "swapoff": 168, "userfaultfd": 323, "acct": 163,
        "open_by_handle_at": 304, "name_to_handle_at": 303, "fsopen": 430, "fsmount": 432,
        "move_mount": 429, "open_tree": 428, "fspick": 433, "mount_setattr": 442,
        "io_uring_setup": 425, "ioperm": 173, "iopl": 172, "personality": 135,
        "settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "sethostname": 170,
        "setdomainname": 171, "quotactl": 179, "syslog": 103, "kcmp": 312, "lookup_dcookie": 212,
    },
    "aarch64": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40,
        "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268,
        "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241,
        "kexec_load": 104, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "reboot": 142, "swapon": 224, "swapoff": 225, "userfaultfd": 282, "acct": 89,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "fsopen": 430, "fsmount": 432,
        "move_mount": 429, "open_tree": 428, "fspick": 433, "mount_setattr": 442,
        "io_uring_setup": 425, "personality": 92, "settimeofday": 170, "clock_settime": 112,
        "adjtimex": 171, "sethostname": 161, "setdomainname": 162, "quotactl": 60,
        "syslog": 116, "kcmp": 272, "lookup_dcookie": 18,
    },
}


def seccomp_supported() -> bool:
    return platform.machine() in _AUDIT_ARCH


_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435
# CLONE_NEWTIME | NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_CLONE_NS_FLAGS = 0x80 | 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000


def seccomp_filter_bytes() -> bytes:
    """A classic-BPF program: kill on a foreign arch; EPERM for the deny-list and for clone()
    asking for new namespaces; ENOSYS for clone3 (its flags sit in memory the filter cannot
    read, and libc then falls back to clone); allow the rest."""
    arch = platform.machine()
    LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
    RET_ALLOW, RET_KILL = 0x7FFF0000, 0x80000000
    RET_EPERM, RET_ENOSYS = 0x00050000 | 1, 0x00050000 | 38
    # (code, k, jump-if-true label, jump-if-false label) or ("label", name)
    prog: list[tuple] = [
        (LD_W_ABS, 4, None, None),
        (JEQ_K, _AUDIT_ARCH[arch], "arch_ok", "kill"),
        ("label", "arch_ok"),
        (LD_W_ABS, 0, None, None),
    ]
    if arch == "x86_64":  # x32 ABI syscalls carry bit 30
        prog.append((JGE_K, 0x40000000, "eperm", None))
    prog.append((JEQ_K, _CLONE3, "enosys", None))
    prog.append((JEQ_K, _CLONE[arch], "clone", None))
    for nr in sorted(set(_DENY[arch].values())):
        prog.append((JEQ_K, nr, "eperm", None))
    prog += [
        (RET_K, RET_ALLOW, None, None),
        ("label", "clone"),
        (LD_W_ABS, 16, None, None),  # low 32 bits of args[0], the flags (little-endian)
        (JSET_K, _CLONE_NS_FLAGS, "eperm", None),
        (RET_K, RET_ALLOW, None, None),
        ("label", "eperm"),
        (RET_K, RET_EPERM, None, None),
        ("label", "enosys"),
        (RET_K, RET_ENOSYS, None, None),
        ("label", "kill"),
        (RET_K, RET_KILL, None, None),
    ]
    where: dict[str, int] = {}
    n = 0
    for ins in prog:
        if ins[0] == "label":
            where[ins[1]] = n
        else:
            n += 1
    out = []
    i = 0
    for ins in prog:
        if ins[0] == "label":
            continue
        code, k, jt, jf = ins
        t = where[jt] - i - 1 if jt else 0
        f = where[jf] - i - 1 if jf else 0
        out.append(struct.pack("HBBI", code, t, f, k))
        i += 1
    return b"".join(out)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(program: bytes) -> None:
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    _check(
        _libc.prctl(
            ctypes.c_int(PR_SET_SECCOMP),
            ctypes.c_ulong(SECCOMP_MODE_FILTER),
            ctypes.byref(fprog),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        ),
        "seccomp",
    )
