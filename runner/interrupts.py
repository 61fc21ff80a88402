"""Ctrl-C and SIGTERM outside the executor: Ctrl-C while Ploomber loads the
pipeline, both from preflight on, and both in the DAG's hooks after the
tasks ran. The command ends with one line instead of a traceback; while
tasks run, executor.py handles the signals itself.

Python drops a KeyboardInterrupt raised inside a function it calls for
itself: an at-fork hook (logging's runs in the parent after every fork), a
__del__, a weakref callback. It prints "Exception ignored in ..." and carries
on. A Ctrl-C that landed while preflight forked its helper process was lost
that way, and the build ran to its end. So the handler notes the signal
before it raises, the code after each fork raises again what was dropped,
and the dropped one prints nothing.
"""
import signal
import sys

RESUME = "Run the same command to resume: it builds only what did not finish."

requested = None  # the signal that asked to stop, once one did
tasks_ran = False  # whether the executor has run this build's tasks


def _note_and_raise(signum, frame):
    global requested
    requested = requested or signum
    raise KeyboardInterrupt


def _one_line(excepthook):
    def hook(kind, error, traceback):
        if not issubclass(kind, KeyboardInterrupt):
            return excepthook(kind, error, traceback)
        name = signal.Signals(requested or signal.SIGINT).name
        when = "after the tasks ran" if tasks_ran else "before any task ran"
        print(f"Interrupted by {name} {when}. {RESUME}", file=sys.stderr)

    return hook


sys.excepthook = _one_line(sys.excepthook)


def handle():
    """From now on in this process (a build's main process: hooks.preflight
    calls this), SIGINT and SIGTERM raise KeyboardInterrupt and are noted. A
    signal the process ignores (SIGINT in a background job of a shell) stays
    ignored."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _note_and_raise)
    sys.unraisablehook = _quiet_when_dropped(sys.unraisablehook)


def _quiet_when_dropped(unraisablehook):
    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and requested):
            unraisablehook(unraisable)

    return hook


def raise_if_dropped():
    """Raise again a stop request whose KeyboardInterrupt Python dropped."""
    if requested is not None:
        raise KeyboardInterrupt
