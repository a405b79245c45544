"""Class mode at work (settings in class_mode.py): training yields to keys, memory has a cap.

Priority. In-app training runs on one engine thread (the engine splits nothing: one thread,
BLAS on one), and in class mode that thread raises its own nice value (`lower_this_thread`:
Linux keeps a nice value per thread, set through its native thread id), while the UI thread
keeps its own: inside one process, keys win over training steps. Linux also groups the
processes of each terminal session (autogroup, /proc/sys/kernel/sched_autogroup_enabled = 1):
it shares the CPU between groups first and by nice only inside a group, so one student's
training thread at nice 19 still takes a whole group's share from another student's keys
(measured on a 2-core box: 5 ms of work took 17 ms beside five busy groups whether their
threads ran at nice 0 or 19, and 9 ms once the groups themselves were at nice 10). So while a
session trains, `SessionGroup` lowers its group's nice too, when the group is this session's
alone (this process and the shell that started it), and puts it back when training stops and
when the app exits (a process killed with SIGKILL leaves its shell's group lowered until the
shell ends). Sessions that share one group (a server starting them all) need nothing more:
nice works inside a group.

Memory. `memory_reason` compares the process's resident size (/proc/self/statm: what `ps`
shows as RSS) with the limit; the training controller asks it before each step, so training
pauses (or does not start) with a message naming the limit and how to raise it; nothing is
lost: the run stays paused and can be saved.
"""
from __future__ import annotations

import atexit
import errno
import os
import sys
import threading
import time
from pathlib import Path

from .class_mode import ClassSettings

PROC = Path("/proc")
GROUP_RETRIES = 12  # the kernel takes one group change per 0.1 s machine-wide: retry this often
MB = 1024 * 1024


# -- priority ---------------------------------------------------------------------------------
def lower_this_thread(nice: int) -> bool:
    """Raise the calling thread's nice value to `nice` (never lowers it); False where it
    cannot be done per thread (not Linux) or is refused."""
    if sys.platform != "linux":  # elsewhere a native thread id is not a scheduling id
        return False
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        return False
    return True


def thread_nice(tid: int) -> int:
    """The nice value of thread `tid` of this process, from /proc (field 19 of its stat)."""
    stat = (PROC / "self" / "task" / str(tid) / "stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


class SessionGroup:
    """This process's scheduling group (Linux autogroup): lowered to a nice value while any
    training runs, when the group is ours alone; see the module docstring."""

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self._lock = threading.Lock()
        self._training = 0  # training threads running now
        self._before: int | None = None  # the group's nice before we lowered it
        self.why_not = ""  # why the group was left alone, when it was

    def training_started(self, nice: int) -> None:
        with self._lock:
            self._training += 1
            if self._training == 1 and self._before is None:
                self._lower(nice)

    def training_ended(self) -> None:
        with self._lock:
            self._training = max(0, self._training - 1)
            if self._training == 0:
                self._put_back()

    def nice(self) -> int | None:
        """The group's nice value now; None without autogroups."""
        group = self._read()
        return None if group is None else group[1]

    def _read(self) -> tuple[str, int] | None:
        """('/autogroup-692', 0) from '/autogroup-692 nice 0'."""
        try:
            name, _, value = (self.proc / "self" / "autogroup").read_text().split()
            return name, int(value)
        except (OSError, ValueError):
            return None

    def _lower(self, nice: int) -> None:
        try:
            enabled = (self.proc / "sys/kernel/sched_autogroup_enabled").read_text().strip()
        except OSError:
            enabled = "0"
        group = self._read()
        if enabled != "1" or group is None:
            self.why_not = "the kernel does not group sessions (no autogroup)"
            return
        name, before = group
        others = self._others_in(name)
        if others:
            self.why_not = f"the group is shared with {len(others)} other process(es)"
            return
        if before >= nice:
            self.why_not = f"the group is at nice {before} already"
            return
        if self._write(nice):
            if self._before is None:
                atexit.register(self._put_back)
            self._before = before

    def _put_back(self) -> None:
        if self._before is not None and self._write(self._before):
            self._before = None

    def _write(self, nice: int) -> bool:
        for _ in range(GROUP_RETRIES):
            try:
                (self.proc / "self" / "autogroup").write_text(str(nice))
                return True
            except OSError as error:
                if error.errno != errno.EAGAIN:
                    self.why_not = f"the kernel refused: {error.strerror}"
                    return False
                time.sleep(0.1)
        self.why_not = "the kernel was busy (EAGAIN)"
        return False

    def _others_in(self, name: str) -> list[int]:
        """Processes in group `name` other than this one and its ancestors (its shell)."""
        ours = set(self._ancestors())
        others = []
        for entry in self.proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            try:
                if (entry / "autogroup").read_text().split()[0] == name:
                    others.append(int(entry.name))
            except (OSError, IndexError):  # it ended meanwhile, or is not ours to read
                continue
        return others

    def _ancestors(self) -> list[int]:
        pids, pid = [], os.getpid()
        while pid > 0 and len(pids) < 64:
            pids.append(pid)
            try:
                stat = (self.proc / str(pid) / "stat").read_text()
                pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent's pid
            except (OSError, ValueError, IndexError):
                break
        return pids


SESSION_GROUP = SessionGroup()  # one per process: the group is the process's


class TrainingPriority:
    """`with TrainingPriority(settings):` around a training thread's work: the thread's nice,
    and the session's group while it runs (class mode only; otherwise nothing)."""

    def __init__(self, settings: ClassSettings, group: SessionGroup = SESSION_GROUP) -> None:
        self.settings = settings
        self.group = group if settings.lower_session_group else None

    def __enter__(self) -> TrainingPriority:
        if self.settings.enabled:
            lower_this_thread(self.settings.training_nice)
            if self.group is not None:
                self.group.training_started(self.settings.training_nice)
        return self

    def __exit__(self, *exc) -> None:
        if self.settings.enabled and self.group is not None:
            self.group.training_ended()


# -- memory -----------------------------------------------------------------------------------
def resident_bytes() -> int | None:
    """This process's resident set size in bytes (Linux /proc), None where it is not known."""
    try:
        pages = int((PROC / "self" / "statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def memory_reason(settings: ClassSettings) -> str | None:
    """Why training must not go on ("612 MB in use, past the class limit of 600 MB"), or
    None: under the limit, no limit, not class mode, or the resident size unknown."""
    if not settings.enabled or settings.memory_limit_mb <= 0:
        return None
    used = resident_bytes()
    if used is None or used <= settings.memory_limit_mb * MB:
        return None
    # "paused at step 123456: " + this stays within a status line of 78 columns
    return f"{used / MB:.0f} MB in use, past the class limit of {settings.memory_limit_mb} MB"


def memory_help(settings: ClassSettings, notice: str) -> str:
    """The whole message for a notification: what happened, that nothing is lost, the fix."""
    return (f"{notice}. Nothing is lost: w saves a checkpoint. Close inspectors and scenarios "
            f"you no longer need (or quit and reopen), or raise memory_limit_mb under [class] "
            f"{settings.where_to_change} (0: no limit).")
