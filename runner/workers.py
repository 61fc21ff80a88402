"""What runs in each worker process of executor.Parallel: one task at a time,
and how a worker stops.

A worker stops its task when it gets SIGINT (Ctrl-C reaches the whole process
group) or SIGTERM (forwarded by the main process): it raises FitInterrupted
inside the notebook cell that is running, so the notebook keeps the error,
Ploomber runs the task's on_failure hook and the fit's MLflow run is closed
FAILED with its partial report. A signal that arrives outside a cell (while
Ploomber prepares the notebook, or in a hook) or while a cell is inside
MLflow is delivered again every half second until it lands in a cell's own
code, or not at all if the task ends first. A task handed over after
the stop is not started.

A thread watches the main process: if it is gone (SIGKILL, the OOM killer),
the worker stops its task the same way and exits within a few seconds. It
leaves the same way when the main process sends LEAVE_SIGNAL, because another
worker was killed: the pool is then broken, and since Python 3.12 nothing
else ends a worker waiting for its next task.
"""
import gc
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from ploomber.executors import _format
from ploomber.messagecollector import Message

from runner import folds

WATCH_SECONDS = 0.5
# a leaving worker (its main process gone, or its pool broken) gives its task this long to close its run
LEAVE_GRACE_SECONDS = 5
LEAVE_SIGNAL = signal.SIGUSR2
# a stop that some code swallowed (an `except Exception` around the cell's call) is raised again
REDELIVER_SECONDS = 1.0
# where a stop waits until the code returns (see _interruptible)
NOT_INTERRUPTIBLE = tuple(
    f"{os.sep}{name}{os.sep}" for name in ("mlflow", "sqlalchemy", "alembic", "logging", "IPython", "importlib")
) + ("<frozen importlib",)
RUN_CODE_FILE = os.path.join("IPython", "core", "interactiveshell.py")


class FitInterrupted(Exception):
    """Raised inside a running notebook cell when the build stops."""


@dataclass
class Failed:
    message: Message = None  # set when the task failed for its own reasons
    # None: its own error; "interrupted": the build stopped; "store": the tracking store is gone;
    # "worker lost": its worker was killed by another than the build
    kind: str = None
    reason: str = None  # with kind "store": what went wrong, e.g. "connection refused"
    since: float = None  # with kind "store": when the first request to the store failed
    signum: int = None  # with kind "interrupted": the signal that stopped it


@dataclass
class NotStarted:
    signum: int


class _State:
    parent = None  # the main process
    main_thread = None
    stop = None  # the signal that stopped this worker
    in_task = False
    interrupted_at = None  # when FitInterrupted was raised into the running task
    leaving_since = None  # when this worker was told, or found, that it has no main process to serve


_state = _State()


def start(parent_pid, stop_signals, threads=None):
    """ProcessPoolExecutor's initializer: runs once in each worker. `stop_signals`:
    those the main process stops on (not SIGINT if it ignores it); `threads`:
    this worker's share of the cores, for the estimators' native thread pools."""
    _state.parent = parent_pid
    if threads:
        _share_the_cores(threads)
    folds.lend_idle_cores()
    _state.main_thread = threading.main_thread().ident
    # Fits allocate many short-lived objects (data frames, trees, MLflow's ORM
    # rows): collecting the young generation every 50,000 allocations instead
    # of every 700 took 3 to 9% off a fit's CPU time. What the main process
    # had before the fork is frozen out of the collector's sight (hooks.preflight).
    gc.set_threshold(50_000, 20, 100)
    for signum in (*stop_signals, signal.SIGUSR1):
        signal.signal(signum, _on_stop_signal)
    signal.signal(LEAVE_SIGNAL, _on_leave)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch, name="watch-main-process", daemon=True).start()


def _share_the_cores(threads):
    """Caps OpenMP and BLAS at `threads` in this worker. Each of them would
    otherwise start a thread per core in every worker: with two workers on two
    cores, HistGradientBoosting's OpenMP threads spun waiting for each other,
    and a fit of 14,000 rows took minutes instead of seconds."""
    from threadpoolctl import threadpool_limits

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)  # for a library loaded after this
    threadpool_limits(threads)  # for those loaded before the fork


def start_helper(parent_pid):
    """The initializer of preflight's helper process, which creates the store
    while the main process warms up. Ctrl-C reaches the whole process group,
    and SIGTERM may too: the helper leaves them to the main process and ends
    its work, so that a fresh store is not left with half its tables."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    start(parent_pid, ())


# The DAG being built: set by executor.Parallel before it forks the workers,
# which so inherit it.
building = None


class BuildTask:
    """Builds one task in a worker, like Ploomber's TaskBuildWrapper, but
    pickled as the task's name and status only: a task holds its DAG."""

    def __init__(self, task):
        self.name, self.exec_status = task.name, task.exec_status

    def __call__(self):
        if _state.stop is not None:
            return NotStarted(_state.stop)
        task = building[self.name]
        # as the main process sees it now (the worker's copy is from the fork);
        # the property's setter would also update downstream tasks
        task._exec_status = self.exec_status
        failed_requests = _FailedRequests()
        _state.in_task, _state.interrupted_at = True, None
        try:
            return task._build(catch_exceptions=True)
        except Exception as error:
            return _failure(task, error, failed_requests.first)
        finally:
            _state.in_task = False
            failed_requests.close()


def _failure(task, error, first_failed_request):
    import tracking

    chain = tracking.causes(error)
    if any(isinstance(e, FitInterrupted) for e in chain):
        return Failed(kind="interrupted", signum=_state.stop)
    if reason := tracking.store_failure(chain):
        return Failed(kind="store", reason=reason, since=first_failed_request or time.time())
    return Failed(message=Message(task=task, message=_format.exception(error), obj=error))


def _on_stop_signal(signum, frame):
    if _state.stop is None:
        _state.stop = signal.SIGTERM if signum == signal.SIGUSR1 else signum
    if _state.in_task and _due(time.monotonic()) and _interruptible(frame):
        _state.interrupted_at = time.monotonic()
        raise FitInterrupted(
            f"the build was stopped ({signal.Signals(_state.stop).name}); the same command resumes it"
        )


def _on_leave(signum, frame):
    _state.leaving_since = _state.leaving_since or time.monotonic()
    if not _state.in_task:
        os._exit(1)
    _on_stop_signal(signal.SIGTERM, frame)  # the watch thread exits once the task has closed its run


def _due(now):
    return _state.interrupted_at is None or now - _state.interrupted_at > REDELIVER_SECONDS


def _interruptible(frame):
    """True inside the code of a notebook cell (IPython's run_code runs it),
    but not inside MLflow, its database layer, logging or IPython itself (which
    formats a cell's error): they catch and print exceptions while they clean
    up, and a store half-written is worse than a stop half a second later."""
    innermost = frame
    while frame is not None:
        code = frame.f_code
        if code.co_name == "run_code" and code.co_filename.endswith(RUN_CODE_FILE):
            return frame is not innermost  # in the cell, not in run_code's own handling
        if any(part in code.co_filename for part in NOT_INTERRUPTIBLE):
            return False
        frame = frame.f_back
    return False


def _watch():
    while True:
        time.sleep(WATCH_SECONDS)
        now = time.monotonic()
        if _state.leaving_since is None and os.getppid() != _state.parent:  # orphaned
            _state.leaving_since = now
            _state.stop = _state.stop or signal.SIGTERM
        leaving = _state.leaving_since is not None
        if leaving and (not _state.in_task or now - _state.leaving_since > LEAVE_GRACE_SECONDS):
            os._exit(1)
        if _state.stop is not None and _state.in_task and _due(now):
            # delivered to the main thread, which runs the task; it raises there if a cell runs
            signal.pthread_kill(_state.main_thread, signal.SIGUSR1)


class _FailedRequests(logging.Handler):
    """Notes when urllib3 first retried a request (MLflow's client retries
    through it): the moment the tracking server stopped answering."""

    LOGGER = "urllib3.connectionpool"

    def __init__(self):
        super().__init__(logging.WARNING)
        self.first = None
        logging.getLogger(self.LOGGER).addHandler(self)

    def emit(self, record):
        if self.first is None and record.getMessage().startswith("Retrying"):
            self.first = record.created

    def close(self):
        logging.getLogger(self.LOGGER).removeHandler(self)
        super().close()
