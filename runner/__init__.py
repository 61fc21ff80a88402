"""How a build runs, below Ploomber and above the tasks:

    executor.py          the parallel executor pipeline.yaml names: waits instead of
                         polling, and stops a build at once (signals, a store gone)
    workers.py           what runs in each worker: one task, stopped inside its notebook
    warm_up.py           what every fit does once per process, done before the workers fork
    lock.py              one build per project folder
    ploomber_patches.py  what Ploomber repeated per grid task, made a one-off

runner/ stands above tracking/ and never the reverse. Nothing here calls MLflow
but through the tracking package; warm_up.py only imports MLflow's modules, and
has it scan the installed packages, ahead of the fits.
"""
