"""A fit's cross-validation folds, and its refit, on a core that no other task of the build uses.

With eight long fits on two workers, the last fit runs alone while the other
worker has nothing to do (7 s of a 92 s build at 100,000 rows), and the last
rung of successive halving is a single fit. The executor publishes how many
workers are idle; a fit's cross-validation (tasks/models.py) then hands each
next job (a fold, or the refit on the whole training split) to a process
forked for it, one per idle core, and works on the others meanwhile. The
same folds, estimators and seeds: the same scores and model.

A job that fails in its process is computed again in the fit's own, so its
error is the notebook's. A fit stopped (Ctrl-C, SIGTERM) kills its jobs'
processes, and a job's process dies with the fit's process however that
ends (a worker killed at the end of the stop's grace, or by the OOM killer).
Its result goes through a file without a name, which no ending leaves behind.
"""
import ctypes
import os
import pickle
import signal
import sys
import tempfile

# [idle workers, cores lent to folds]: made by the main process before it forks the workers
_cores = None
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def share(context):
    """In the main process, before the workers fork: the count they will read."""
    global _cores
    _cores = context.Array("i", [0, 0])


def set_idle_workers(count):
    """In the main process: how many workers have no task now."""
    if _cores is not None and _cores[0] != count:
        _cores[0] = count


def lend_idle_cores():
    """In a worker: from now on, cross_validate hands folds to idle cores."""
    if _cores is not None:
        from tasks import models  # not at the top: the executor imports this module while pipeline.yaml loads

        models.run_folds = _with_idle_cores


def _with_idle_cores(job, count):
    outcomes, lent = [None] * count, {}
    try:
        for i in range(count):
            _collect_finished(lent, outcomes, block=False)
            # the last job stays here: this process would otherwise only wait
            if i < count - 1 and _borrow_a_core():
                lent[i] = _fork(job, i)
            else:
                outcomes[i] = job(i)
        _collect_finished(lent, outcomes, block=True)
    finally:
        for pid, result in lent.values():  # stopped, or failed here: their work is not wanted
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
            _return_a_core()
            result.close()
    for i, outcome in enumerate(outcomes):
        if outcome is None:  # failed in its process: again here, where its error surfaces
            outcomes[i] = job(i)
    return outcomes


def _fork(job, i):
    result = tempfile.TemporaryFile(prefix="fold-")  # shared with the child, read back once it exits
    fit_process = os.getpid()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            _die_with(fit_process)
            pickle.dump(job(i), result, protocol=pickle.HIGHEST_PROTOCOL)
            result.flush()
            status = 0
        finally:
            os._exit(status)  # neither exit handlers nor buffered output of the fit's process
    return pid, result


def _die_with(parent):
    """In a job's process: be killed when `parent` ends (Linux; elsewhere the
    job runs to its end)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the line above
        os._exit(1)


def _collect_finished(lent, outcomes, block):
    for i, (pid, result) in list(lent.items()):
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if not done:
            continue
        del lent[i]
        _return_a_core()
        with result:
            if os.waitstatus_to_exitcode(status) == 0:
                result.seek(0)
                outcomes[i] = pickle.load(result)


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _borrow_a_core():
    with _cores.get_lock():
        if _cores[0] - _cores[1] > 0:
            _cores[1] += 1
            return True
    return False


def _return_a_core():
    with _cores.get_lock():
        _cores[1] -= 1
