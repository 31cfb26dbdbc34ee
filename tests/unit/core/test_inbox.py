"""The latest-wins hand-over of worker messages (camioc.core.inbox)."""

from __future__ import annotations

import threading

from camioc.core.inbox import LatestWinsInbox


def test_state_messages_replace_the_pending_one_of_their_kind() -> None:
    inbox = LatestWinsInbox()
    assert inbox.put(("status", 1)) is True  # first message: the caller schedules a drain
    assert inbox.put(("image", "a")) is False
    assert inbox.put(("status", 2)) is False
    assert inbox.put(("image", "b")) is False
    assert inbox.take() == [("status", 2), ("image", "b")]
    assert inbox.replaced == 2
    assert len(inbox) == 0


def test_an_ordered_message_is_never_overtaken_nor_merged() -> None:
    inbox = LatestWinsInbox()
    inbox.put(("status", 1))
    inbox.put(("log", "between"))
    inbox.put(("status", 2))
    inbox.put(("status", 3))
    inbox.put(("reply", (7, True, None)))
    inbox.put(("stopped", {}))
    assert inbox.take() == [("status", 1), ("log", "between"), ("status", 3), ("reply", (7, True, None)),
                            ("stopped", {})]


def test_after_a_take_the_next_message_asks_for_a_new_drain() -> None:
    inbox = LatestWinsInbox()
    assert inbox.put(("results", 1)) is True
    assert inbox.take() == [("results", 1)]
    assert inbox.take() == []
    assert inbox.put(("results", 2)) is True
    assert inbox.take() == [("results", 2)]


def test_concurrent_puts_lose_no_ordered_message_and_keep_the_newest_state() -> None:
    inbox = LatestWinsInbox()
    taken: list[tuple[str, object]] = []
    done = threading.Event()

    def produce() -> None:
        for seq in range(20000):
            inbox.put(("status", seq))
            if seq % 100 == 0:
                inbox.put(("log", seq))
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    while not done.is_set():
        taken.extend(inbox.take())
    thread.join()
    taken.extend(inbox.take())
    logs = [value for kind, value in taken if kind == "log"]
    statuses = [value for kind, value in taken if kind == "status"]
    assert logs == list(range(0, 20000, 100))
    assert statuses == sorted(statuses) and statuses[-1] == 19999
