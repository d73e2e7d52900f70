"""The feed between the plan's reader and the sender: order, back-pressure, stopping."""

from __future__ import annotations

import threading
import time

import pytest

from segmentsync.engine.rows import PlanRow
from segmentsync.engine.send import Feed


def rows(first: int, count: int, action: str = "new") -> list[PlanRow]:
    return [
        PlanRow(1, seq, f"p{seq}@example.com", str(seq), "h", "{}", action, None, None, None)
        for seq in range(first, first + count)
    ]


def test_rows_come_out_in_the_order_they_were_put_and_closing_ends_them() -> None:
    feed = Feed()
    feed.put(rows(1, 3))
    feed.put([])  # nothing to send in a chunk: nothing waits
    feed.put(rows(4, 2, "remove"))
    feed.close()
    assert [(row.seq, row.action) for row in feed.rows()] == [
        (1, "new"), (2, "new"), (3, "new"), (4, "remove"), (5, "remove"),
    ]  # fmt: skip


def test_the_writer_waits_while_max_chunks_are_not_taken() -> None:
    feed = Feed(max_chunks=2)
    assert feed.put(rows(1, 1))
    assert feed.put(rows(2, 1))
    third = threading.Thread(target=feed.put, args=(rows(3, 1),))
    third.start()
    third.join(0.2)
    assert third.is_alive()  # the third chunk waits for the sender
    taken = feed.rows()
    assert next(taken).seq == 1  # the sender takes the first chunk: room for the third
    third.join(2)
    assert not third.is_alive()
    feed.close()
    assert [row.seq for row in taken] == [2, 3]


def test_a_sender_that_stopped_releases_a_waiting_writer() -> None:
    feed = Feed(max_chunks=1)
    assert feed.put(rows(1, 1))
    answer: list[bool] = []
    writer = threading.Thread(target=lambda: answer.append(feed.put(rows(2, 1))))
    writer.start()
    time.sleep(0.05)
    feed.leave()
    writer.join(2)
    assert answer == [False]
    assert feed.put(rows(3, 1)) is False


def test_an_abort_stops_the_sender_taking_rows() -> None:
    feed = Feed()
    feed.put(rows(1, 2))
    feed.put(rows(3, 1))
    taken = feed.rows()
    assert next(taken).seq == 1
    assert next(taken).seq == 2
    feed.abort(RuntimeError("the plan could not be read"))
    with pytest.raises(RuntimeError, match="could not be read"):
        next(taken)  # the chunk still waiting is not sent
