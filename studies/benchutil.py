"""What the benchmark scripts share: running one measurement in a fresh process (so that a peak-memory
figure is that measurement's own, not the largest one before it)."""

import multiprocessing as mp


def _child(fn, args, queue):
    queue.put(fn(*args))


def in_fresh_process(fn, *args):
    """fn(*args) in a new spawned Python process; its return value."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result
