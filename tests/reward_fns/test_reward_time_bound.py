"""The symbolic check is time-bounded off the main thread: thread pools, asyncio, daemonic processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import sys

import pytest

from reward_fns.math import answers_equal
from reward_fns.verify_pool import get_pool

# math-verify evaluates (10^7)! here and does not come back for minutes.
PATHOLOGICAL = ("(10^{7})! - (10^{7})! + 5", "5")
SYMBOLIC_EQUAL = ("\\sqrt{25}", "5")
GENEROUS_S = 120  # startup of helpers on a loaded machine plus the 1 s bound; no speed claim


def test_pathological_input_is_cut_off_in_worker_threads_and_the_pool_recovers():
    pool = get_pool()
    timeouts_before = pool.stats["timeouts"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as executor:
        stuck = [executor.submit(answers_equal, *PATHOLOGICAL, 1.0) for _ in range(2)]
        fine = executor.submit(answers_equal, *SYMBOLIC_EQUAL)
        assert [f.result(timeout=GENEROUS_S) for f in stuck] == [False, False]
        assert fine.result(timeout=GENEROUS_S) is True
    assert pool.stats["timeouts"] - timeouts_before == 2
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        assert executor.submit(answers_equal, *SYMBOLIC_EQUAL).result(timeout=GENEROUS_S) is True


def test_asyncio_executor():
    async def main():
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(
            asyncio.gather(
                loop.run_in_executor(None, answers_equal, *PATHOLOGICAL, 1.0),
                loop.run_in_executor(None, answers_equal, *SYMBOLIC_EQUAL),
            ),
            timeout=GENEROUS_S,
        )

    assert asyncio.run(main()) == [False, True]


def _judge_in_child(queue) -> None:
    queue.put((answers_equal(*SYMBOLIC_EQUAL), answers_equal(*PATHOLOGICAL, 1.0), os.getpid()))


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_daemonic_process(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} start method not available on {sys.platform}")
    get_pool().warm_up()  # a forked child must not reuse the parent's helpers
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    child = ctx.Process(target=_judge_in_child, args=(queue,), daemon=True)
    child.start()
    try:
        equal, stuck, pid = queue.get(timeout=GENEROUS_S)
    finally:
        child.join(timeout=GENEROUS_S)
        if child.is_alive():
            child.kill()
    assert (equal, stuck) == (True, False)
    assert pid != os.getpid()
    assert answers_equal(*SYMBOLIC_EQUAL) is True  # the parent's helpers still work
