"""Ploomber's parallel executor, waiting for tasks instead of polling them,
and sending workers task names instead of tasks.

ploomber.executors.Parallel checks for finished tasks in a loop that never
sleeps, so on a two-core machine its main process takes a core from the
workers for the whole build. This one blocks until a task finishes.

Ploomber also pickles each task for its worker, and a task holds its DAG:
every fit shipped the whole rendered grid (0.7 MB at 64 fits, 11.7 MB and
0.2 s of CPU at 1,024). The workers are forked after the DAG is rendered, so
each already holds it: they get the task's name and status instead.

Tasks, hooks, statuses and the error summary behave as in Ploomber's executor.
"""
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

from ploomber.constants import TaskStatus
from ploomber.exceptions import DAGBuildError
from ploomber.executors import Parallel as PloomberParallel
from ploomber.executors.abc import Executor
from ploomber.executors.parallel import TaskBuildWrapper
from ploomber.messagecollector import BuildExceptionsCollector, Message
from tqdm.auto import tqdm

# Imported here because pipeline.yaml names this executor: Ploomber imports it
# before building any task, so the patches apply to every task of the grid.
import ploomber_patches  # noqa: F401,E402  (patches Ploomber on import)

READY = {TaskStatus.WaitingExecution, TaskStatus.WaitingDownload}
# The DAG being built, as the forked workers inherit it.
_dag = None


def _build_in_worker(name, exec_status):
    """Build task `name` of the DAG this worker was forked with; its status
    comes from the main process, where upstream tasks have finished since."""
    task = _dag[name]
    task._exec_status = exec_status  # as it was pickled; the setter would update downstream tasks
    return TaskBuildWrapper(task)(catch_exceptions=True)


class Parallel(PloomberParallel):
    def __call__(self, dag, show_progress):
        Executor.__call__(self, dag)
        started, running, reports, errors = set(), {}, [], []
        to_run = sum(t.exec_status not in {TaskStatus.Executed, TaskStatus.Skipped} for t in dag.values())
        bar = tqdm(total=to_run) if show_progress else None

        global _dag
        _dag = dag
        forked = self.start_method == "fork"
        with ProcessPoolExecutor(self.processes, mp_context=get_context(self.start_method)) as pool:
            while True:
                # a finished task moves its downstream tasks to WaitingExecution
                for task in dag.values():
                    if task.exec_status in READY and task.name not in started:
                        started.add(task.name)
                        if forked:
                            future = pool.submit(_build_in_worker, task.name, task.exec_status)
                        else:
                            future = pool.submit(TaskBuildWrapper(task), catch_exceptions=True)
                        running[future] = task
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = running.pop(future)
                    result = future.result()  # BrokenProcessPool propagates
                    if isinstance(result, Message):
                        errors.append(result)
                        task.exec_status = TaskStatus.Errored  # aborts its downstream tasks
                    else:
                        report, metadata = result
                        task.product.metadata.update_locally(metadata)
                        task.exec_status = TaskStatus.Executed
                        reports.append(report)
                    if bar:
                        bar.update()
        if bar:
            bar.close()
        if errors:
            raise DAGBuildError(str(BuildExceptionsCollector(errors)))
        return reports
