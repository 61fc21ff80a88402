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
processes; a job's process whose fit is gone finishes its job and exits.
"""
import os
import pickle
import tempfile

# [idle workers, cores lent to folds]: made by the main process before it forks the workers
_cores = None


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
        for pid, path in lent.values():  # stopped, or failed here: their work is not wanted
            os.kill(pid, 9)
            _reap(pid)
            _return_a_core()
            os.unlink(path)
    for i, outcome in enumerate(outcomes):
        if outcome is None:  # failed in its process: again here, where its error surfaces
            outcomes[i] = job(i)
    return outcomes


def _fork(job, i):
    handle, path = tempfile.mkstemp(prefix="fold-", suffix=".pickle")
    os.close(handle)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            outcome = job(i)
            with open(path, "wb") as out:  # read back by the fit's own process only
                pickle.dump(outcome, out, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)  # neither exit handlers nor buffered output of the fit's process
    return pid, path


def _collect_finished(lent, outcomes, block):
    for i, (pid, path) in list(lent.items()):
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if not done:
            continue
        del lent[i]
        _return_a_core()
        if os.waitstatus_to_exitcode(status) == 0:
            with open(path, "rb") as result:
                outcomes[i] = pickle.load(result)
        os.unlink(path)


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
