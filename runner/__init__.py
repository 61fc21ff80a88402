"""How a build runs, below Ploomber and above the tasks:

    executor.py          the parallel executor pipeline.yaml names: waits instead of
                         polling, and stops a build at once (signals, a store gone)
    workers.py           what runs in each worker: one task, stopped inside its notebook
    lock.py              one build per project folder
    ploomber_patches.py  what Ploomber repeated per grid task, made a one-off

Nothing here knows MLflow but through the tracking package.
"""
