"""One build per project folder at a time.

A build holds an exclusive flock on `.build.lock` in the project folder from
the moment its DAG is rendered until its process exits; the file says which
process holds it. The kernel drops the lock when the process dies, so a lock
left by a killed build is simply taken. Forked workers inherit the lock and
keep it until they exit (within seconds of their build's death), so a new
build never runs beside the workers of a dead one: it waits for them.

Commands that only read (`ploomber status`, `ploomber plot`) and `ploomber
task` (one task of a SLURM job) render the DAG too, but take no lock.
"""
import fcntl
import os
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

LOCK_FILE = ".build.lock"
# how long a build waits for the workers of a killed build to exit
ORPHANS_EXIT_SECONDS = 15

_held = {}  # folder -> the open lock file, for as long as this process lives


class BuildRunning(Exception):
    """Another build of the project is running; the message is one line naming it."""


def hold(folder):
    """Take the build lock of `folder` for this process, or raise BuildRunning."""
    folder = Path(folder).resolve()
    if folder in _held:
        return
    lock = open(folder / LOCK_FILE, "a+")
    deadline = time.monotonic() + ORPHANS_EXIT_SECONDS
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _holder(lock)
            if _alive(holder) or time.monotonic() > deadline:
                lock.close()
                raise BuildRunning(_refusal(folder, holder)) from None
            time.sleep(0.2)  # its main process is gone: its workers are exiting
    lock.seek(0)
    lock.truncate()
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    lock.write(f"pid={os.getpid()}\nhost={socket.gethostname()}\nstarted={started}\n")
    lock.flush()
    _held[folder] = lock


def building():
    """True when the DAG is being rendered as the first step of DAG.build
    (`ploomber build`), not of `ploomber status`, `plot` or `task`."""
    from ploomber import DAG

    return _called_from(DAG._build)


def showing():
    """True when the DAG is being rendered only to be shown (`ploomber status`,
    `ploomber plot`): nothing of it will run."""
    from ploomber import DAG

    return _called_from(DAG.status, DAG.plot)


def build_command():
    """True inside `ploomber build` on the command line, which prints its table
    of tasks after the DAG's hooks have run."""
    from ploomber.cli import build

    return _called_from(build.main)


def _called_from(*functions):
    codes = {function.__code__ for function in functions}
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _holder(lock):
    lock.seek(0)
    return dict(line.split("=", 1) for line in lock.read().splitlines() if "=" in line)


def _alive(holder):
    """Whether the build that wrote the lock file still runs; one of another host is taken to."""
    pid = holder.get("pid", "")
    if holder.get("host") != socket.gethostname():
        return True
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _refusal(folder, holder):
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
    return f"Another build of {folder} is running ({who}); wait for it to end, or stop it, then build again."
