"""How a build runs, below Ploomber and above the tasks:

    executor.py          the parallel executor pipeline.yaml names: waits instead of
                         polling, and stops a build at once (signals, a store gone)
    interrupts.py        Ctrl-C and SIGTERM before and after the tasks: one line, never lost
    workers.py           what runs in each worker: one task, stopped inside its notebook
    folds.py             a fit's folds on the cores of idle workers
    warm_up.py           what every fit does once per process, done before the workers fork
    lock.py              one build per project folder
    ploomber_patches.py  what Ploomber repeated per grid task, made a one-off

runner/ stands above tracking/ and never the reverse. Nothing here calls MLflow
but through the tracking package; warm_up.py only imports MLflow's modules, and
has it scan the installed packages, ahead of the fits.
"""
