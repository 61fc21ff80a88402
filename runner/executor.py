"""Ploomber's parallel executor, waiting for tasks instead of polling them, and
stopping a build at once when asked to or when the tracking store is gone.

ploomber.executors.Parallel checks for finished tasks in a loop that never
sleeps, so on a two-core machine its main process takes a core from the
workers for the whole build. This one blocks until a task finishes (waking
four times a second to notice a signal). Tasks, hooks, statuses and the error
summary behave as in Ploomber's executor.

Stopping: SIGINT (Ctrl-C, sent to the whole process group) or SIGTERM (sent
to the main process alone), or a fit that failed because the tracking store
cannot be reached, stops the build: no further task starts, the running ones
are interrupted inside their notebook (so their on_failure hook closes their
MLflow run FAILED with the partial report), and the build fails the normal
Ploomber way (DAGBuildError, so the DAG's on_failure hook runs) with one line
that says what happened and that the same command resumes the build.

Workers are sent task names, not tasks: Ploomber pickles each task for its
worker, and a task holds its DAG, so every fit shipped the whole rendered grid
(0.7 MB at 64 fits, 11.7 MB and 0.2 s of CPU at 1,024). The workers are forked
after the DAG is rendered, so each already holds it (workers.BuildTask).
"""
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

from ploomber.constants import TaskStatus
from ploomber.exceptions import DAGBuildError
from ploomber.executors import Parallel as PloomberParallel
from ploomber.executors.abc import Executor
from ploomber.messagecollector import BuildExceptionsCollector
from tqdm.auto import tqdm

from runner import folds, interrupts, workers

# Imported here because pipeline.yaml names this executor: Ploomber imports it
# before building any task, so the patches apply to every task of the grid.
from runner import ploomber_patches  # noqa: F401,E402  (patches Ploomber on import)

READY = {TaskStatus.WaitingExecution, TaskStatus.WaitingDownload}
# tasks handed to each worker at a time: the one it runs and the next
TASKS_PER_WORKER = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# how often the main process wakes from waiting on tasks to look for a stop request
WAKE_SECONDS = 0.25
# how long interrupted tasks get to close their runs before their workers are killed
STOP_GRACE_SECONDS = 3.5


class BuildStopped(DAGBuildError):
    """A build stopped by a signal or an unreachable store: one line, no "Need help?" footer."""

    def __init__(self, message):
        Exception.__init__(self, message)


class Parallel(PloomberParallel):
    def __call__(self, dag, show_progress):
        Executor.__call__(self, dag)
        interrupts.raise_if_dropped()
        interrupts.tasks_ran = True
        build = _Build(dag, self.processes or os.cpu_count())
        bar = tqdm(total=build.to_run) if show_progress else None
        # a build started in the background by a shell ignores SIGINT, and so do its workers
        handled = [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
        previous = {signum: signal.signal(signum, build.request_stop) for signum in handled}
        try:
            workers.building = dag  # what the forked workers find their tasks in
            folds.share(get_context("fork"))
            pool = ProcessPoolExecutor(
                build.processes, mp_context=get_context("fork"),
                initializer=workers.start,
                initargs=(os.getpid(), handled, max(1, (os.cpu_count() or 1) // build.processes)),
            )
            with pool:
                build.run(pool, bar)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if bar:
                bar.close()
        build.raise_if_failed()
        return build.reports


class _Build:
    def __init__(self, dag, processes):
        self.dag, self.processes = dag, processes
        self.running, self.reports, self.errors = {}, [], []
        # in topological order, computed once: DAG.values() sorts the graph on every call;
        # the fits, which become ready together, costliest first (_costliest_fits_first)
        self.unstarted = _costliest_fits_first(
            [t for t in dag.values() if t.exec_status not in {TaskStatus.Executed, TaskStatus.Skipped}]
        )
        self.to_run = len(self.unstarted)
        self.fits_to_run = [t.name for t in self.unstarted if _is_fit(t)]
        self.fits_done, self.fits_failed = set(), set()
        self.stop_signal = None  # the signal that asked to stop, if any
        self.outage = None  # (tracking_uri, reason, since) of the first store failure
        self.worker_lost = False  # whether a worker was killed by another than this process
        self.stop_started = None  # when the running tasks were told to stop
        self.signals_received = 0

    @property
    def stopping(self):
        return self.stop_signal is not None or self.outage is not None or self.worker_lost

    def request_stop(self, signum, frame):
        """Signal handler of the main process: only records the request."""
        self.signals_received += 1
        if self.stop_signal is None:
            self.stop_signal = signum

    def run(self, pool, bar):
        while True:
            if not self.stopping:
                self._submit_ready(pool)
            # a worker without a task lends its core to the folds of a running fit (runner/folds.py)
            folds.set_idle_workers(0 if self.stopping else max(0, self.processes - len(self.running)))
            if not self.running:
                return
            finished, _ = wait(self.running, timeout=WAKE_SECONDS, return_when=FIRST_COMPLETED)
            for future in finished:
                self._collect(future, bar)
            if self.stopping:
                self._stop_running(pool)

    def _submit_ready(self, pool):
        # A finished task moves its downstream tasks to WaitingExecution. Each
        # worker has one task queued behind the one it runs, so that it starts
        # the next as soon as it ends one, without waiting for this process to
        # hear of it; a task still queued when the build stops is not started.
        waiting = []
        for task in self.unstarted:
            if task.exec_status in READY and len(self.running) < self.processes * TASKS_PER_WORKER:
                self.running[pool.submit(workers.BuildTask(task))] = task
            else:
                waiting.append(task)
        self.unstarted = waiting

    def _collect(self, future, bar):
        task = self.running.pop(future)
        try:
            result = future.result()
        except Exception:  # its worker died: killed at the end of a stop's grace, or by another (the OOM killer)
            result = workers.Failed(None, "interrupted" if self.stop_started else "worker lost")
        if isinstance(result, workers.NotStarted):  # its worker was told to stop first
            self.stop_signal = self.stop_signal or result.signum
            return
        if isinstance(result, workers.Failed):
            task.exec_status = TaskStatus.Errored  # aborts its downstream tasks
            if _is_fit(task):
                self.fits_failed.add(task.name)
            if result.kind == "interrupted":  # a signal may have reached a worker alone
                self.stop_signal = self.stop_signal or result.signum or signal.SIGTERM
            if result.kind == "worker lost":
                self.worker_lost = True
            if result.kind == "store" and self.outage is None:
                self.outage = (task.params["mlflow_tracking_uri"], result.reason, result.since)
            if result.kind is None:  # failed for its own reasons: reported as Ploomber does
                self.errors.append(result.message)
        else:
            report, metadata = result
            task.product.metadata.update_locally(metadata)
            task.exec_status = TaskStatus.Executed
            self.reports.append(report)
            if _is_fit(task):
                self.fits_done.add(task.name)
        if bar:
            bar.update()

    def _stop_running(self, pool):
        """Tell the workers to interrupt their task; kill them if that takes too long."""
        now = time.monotonic()
        if self.stop_started is None:
            self.stop_started = now
            _signal_workers(pool, signal.SIGTERM)
            if self.worker_lost:  # the pool is broken: its other workers would wait for a task forever
                _signal_workers(pool, workers.LEAVE_SIGNAL)
        if self.running and (now - self.stop_started > STOP_GRACE_SECONDS or self.signals_received > 1):
            # a second Ctrl-C, or tasks that do not end: the DAG's on_failure hook closes their runs
            _signal_workers(pool, signal.SIGKILL)

    def raise_if_failed(self):
        if self.stopping:
            errors = f"{BuildExceptionsCollector(self.errors)}\n" if self.errors else ""
            raise BuildStopped(errors + self._stop_line())
        if self.errors:
            raise DAGBuildError(str(BuildExceptionsCollector(self.errors)))

    def _stop_line(self):
        done, failed = len(self.fits_done), len(self.fits_failed)
        not_started = len(self.fits_to_run) - done - failed
        counts = f"{done} fits done, {failed} failed, {not_started} not started"
        if self.outage:
            import tracking

            uri, reason, since = self.outage
            return tracking.outage_line(uri, reason, since, counts)
        if self.worker_lost:
            killed = "a worker process was killed (by the OOM killer, or a signal sent to it alone)"
            return f"Build stopped: {killed}: {counts}. {interrupts.RESUME}"
        name = signal.Signals(self.stop_signal).name
        return f"Build interrupted by {name}: {counts}. {interrupts.RESUME}"


def _is_fit(task):
    from tasks import search

    return search.what_is(task).is_fit


def _costliest_fits_first(tasks):
    """`tasks` with the fits, in the places the fits held, sorted by their estimated cost,
    costliest first (ties keep the grid's order). Started in grid order, a grid whose
    largest forests come last (the grid lists them last) leaves one worker idle while
    the other fits the last of them; started longest first, the short fits fill in at
    the end on whichever worker is free."""
    from tasks import models

    fits = sorted((t for t in tasks if _is_fit(t)), key=lambda t: -models.estimated_cost(t.params["model"]))
    costliest = iter(fits)
    return [next(costliest) if _is_fit(t) else t for t in tasks]


def _signal_workers(pool, signum):
    for pid in list(pool._processes or {}):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

