"""JobStream: token frames from another thread reach the reader in order, a burst in one
batch, and the terminal event ends the stream whatever comes after it."""
import asyncio
import threading

from orcd.server.stream import JobStream


def encode(kind, data) -> bytes:
    return f"{kind}:{data['n']};".encode()


def test_tokens_from_a_thread_arrive_in_order_and_end_at_the_terminal():
    async def main():
        stream = JobStream(asyncio.get_running_loop(), encode)
        stream.put("started", {"n": -1})

        ended = threading.Event()

        def end():  # the loop decides the terminal event, as JobRunner does
            stream.put("end", {"n": 500})
            ended.set()

        def produce():
            for n in range(500):
                stream.put_threadsafe("token", {"n": n})
            stream.loop.call_soon_threadsafe(end)
            ended.wait()
            stream.put_threadsafe("token", {"n": 501})  # after the terminal: never read

        threading.Thread(target=produce).start()
        return [b"".join(frame for _, _, frame in batch) async for batch in stream.batches()]

    batches = asyncio.run(main())
    want = b"started:-1;" + b"".join(f"token:{n};".encode() for n in range(500)) + b"end:500;"
    assert b"".join(batches) == want


def test_a_burst_before_the_reader_waits_is_one_batch_and_no_wake_up():
    async def main():
        stream = JobStream(asyncio.get_running_loop(), None)
        thread = threading.Thread(target=lambda: [stream.put_threadsafe("token", {"n": n})
                                                  for n in range(5)])
        thread.start()
        thread.join()
        assert not stream.wake_scheduled  # nobody was waiting: the loop was not woken
        stream.put("error", {"n": 5})
        return [[data["n"] for _, data, frame in batch if frame is None] async for batch in stream.batches()]

    assert asyncio.run(main()) == [[0, 1, 2, 3, 4, 5]]


def test_the_engine_thread_goes_on_once_the_loop_has_sent_what_it_was_woken_for(monkeypatch):
    """The hand-off that keeps the loop from waiting behind the engine thread for the GIL:
    put_threadsafe returns once the reader has taken the batch and asked for the next, and
    wait_for_reader once the reader waits; not at the bound (made long here)."""
    monkeypatch.setattr("orcd.server.stream.HANDOFF_SEC", 30.0)

    async def main():
        stream = JobStream(asyncio.get_running_loop(), None)
        taken, seen_at_return = [], []

        def produce():
            stream.wait_for_reader()
            seen_at_return.append(list(taken))
            for n in range(3):
                stream.put_threadsafe("token", {"n": n})
                seen_at_return.append(list(taken))
            stream.loop.call_soon_threadsafe(stream.put, "end", {"n": 3})

        thread = threading.Thread(target=produce)
        started = asyncio.get_running_loop().time()
        thread.start()
        async for batch in stream.batches():
            taken.extend(data["n"] for _, data, _ in batch)
        thread.join()
        return seen_at_return, asyncio.get_running_loop().time() - started

    seen, elapsed = asyncio.run(main())
    assert seen == [[], [0], [0, 1], [0, 1, 2]]
    assert elapsed < 10.0  # no wait ran to its bound
