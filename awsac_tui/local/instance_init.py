"""The init process of one local instance: runs its boot command and ends every process it made.

Started by the process runner (runner.ProcessMachine) as ``python -I instance_init.py ...``; stdlib
only, so it imports nothing of awsac. It is a child subreaper (PR_SET_CHILD_SUBREAPER), so every
process the boot command leaves behind (``setsid``, ``nohup``, ``env -i``, double forks) is
re-parented to it and stays its descendant. It lives as long as the instance:

- the boot command's exit code goes to ``--exit-file``; the instance stays up (like a VM whose
  agent exited);
- SIGTERM (stop/terminate): SIGTERM to every descendant, SIGKILL after ``--grace`` seconds, exit;
- end of file on ``--lifeline`` (the local cloud's process died, even by SIGKILL: a host crash):
  SIGKILL to every descendant at once, exit.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.5


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live (non-zombie) process, from /proc."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 2 and fields[0] != b"Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return found


def descendants(root: int) -> list[int]:
    """Live (non-zombie) descendants of ``root``, and the other live members of its process
    group: a scan of /proc is not atomic, and a process whose parent dies while it is read (it is
    being re-parented to us) must not look gone, or ``end_everything`` would end at once and the
    runner's SIGKILL to our group would take it mid-shutdown."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    seen = set(found)
    found += [
        pid
        for pid, (_, group) in procs.items()
        if group == root and pid not in seen and pid != root
    ]
    return found


def _reap_all() -> list[tuple[int, int]]:
    """Reap every exited child without blocking: [(pid, wait status)]."""
    reaped: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append((pid, status))


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def end_everything(grace: float) -> int:
    """SIGTERM every descendant, SIGKILL what is left after ``grace``; reap all. Count ended."""
    me = os.getpid()
    first = descendants(me)
    if grace > 0 and first:
        _signal_all(first, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap_all()
            if not descendants(me):
                break
            time.sleep(0.05)
    # descendants fork while we kill; orphans come back to us (subreaper): repeat until none
    for _ in range(200):
        left = descendants(me)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.01)
        _reap_all()
    _reap_all()
    return len(first)


def _write_exit(path: Path, status: int) -> None:
    # written whole (temporary file, rename) like fsutil.atomic_write, which this stdlib-only
    # program (python -I) cannot import
    code = os.waitstatus_to_exitcode(status)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{code}\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="instance_init")
    parser.add_argument("--instance-dir", required=True, type=Path, help="names this instance")
    parser.add_argument("--exit-file", required=True, type=Path)
    parser.add_argument("--lifeline", type=int, default=-1, help="fd; EOF means the host died")
    parser.add_argument("--grace", type=float, default=3.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no boot command given")

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    stop = {"grace": None}

    def on_term(_sig: int, _frame: object) -> None:
        stop["grace"] = args.grace

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    if not become_subreaper():
        print("awsac local: PR_SET_CHILD_SUBREAPER unavailable; daemons may escape", flush=True)
    try:
        boot = subprocess.Popen(command, stdin=subprocess.DEVNULL, close_fds=True)
    except OSError as exc:
        print(f"awsac local: cannot start boot command {command}: {exc}", flush=True)
        args.exit_file.write_text("127\n")
        boot = None

    watched = [wake_r] + ([args.lifeline] if args.lifeline >= 0 else [])
    while stop["grace"] is None:
        for pid, status in _reap_all():
            if boot is not None and pid == boot.pid:
                boot.returncode = os.waitstatus_to_exitcode(status)
                _write_exit(args.exit_file, status)
        try:
            ready, _, _ = select.select(watched, [], [], POLL_S)
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
        if args.lifeline >= 0 and args.lifeline in ready:
            try:
                data = os.read(args.lifeline, 512)
            except OSError as exc:
                data = b"" if exc.errno != errno.EAGAIN else b"x"
            if not data:  # the local cloud is gone: power off
                stop["grace"] = 0.0
    end_everything(float(stop["grace"] or 0.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
