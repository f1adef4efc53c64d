"""The task store (SQLite and PostgreSQL): submission, compare-and-set transitions, leases,
cancel, retry."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketexport.errors import NotFoundError, RequestError, TaskStateError
from marketexport.request import build_request
from marketexport.tasks.model import TaskError, TaskProgress, TaskState
from marketexport.tasks.store import TaskStore

REQUEST = build_request(dataset="ohlcv", format="csv")


class Clock:
    """A hand-moved clock, so lease expiry needs no sleeping."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(task_store_where: Path | str, clock: Clock) -> Iterator[TaskStore]:
    opened = TaskStore(task_store_where, clock=clock)
    yield opened
    opened.close()


def test_store_file_is_wal_and_keeps_tasks_across_reopen(tmp_path: Path) -> None:
    first = TaskStore(tmp_path / "tasks.sqlite3")
    task = first.submit(REQUEST, owner="alice", priority=3)
    first.close()

    again = TaskStore(tmp_path / "tasks.sqlite3")
    mode = sqlite3.connect(tmp_path / "tasks.sqlite3").execute("PRAGMA journal_mode").fetchall()

    assert mode == [("wal",)]
    stored = again.get(task.id)
    assert (stored.owner, stored.priority, stored.state) == ("alice", 3, TaskState.PENDING)
    assert stored.request == REQUEST.to_dict()


def test_claim_takes_priority_first_then_submission_order(store: TaskStore) -> None:
    first = store.submit(REQUEST)
    second = store.submit(REQUEST)
    urgent = store.submit(REQUEST, priority=5)

    order = [store.claim_next("w", 30) for _ in range(4)]

    assert [t.id if t else None for t in order] == [urgent.id, first.id, second.id, None]
    assert all(t.attempts == 1 and t.lease_owner == "w" for t in order if t)


def test_two_stores_racing_for_tasks_never_take_one_twice(task_store_where: Path | str) -> None:
    first = TaskStore(task_store_where)
    submitted = {first.submit(REQUEST).id for _ in range(40)}
    first.close()
    taken: list[str] = []
    lock = threading.Lock()

    def claim_all(worker: str) -> None:
        store = TaskStore(task_store_where)  # its own connection, as another process has
        while (task := store.claim_next(worker, 30)) is not None:
            with lock:
                taken.append(task.id)
        store.close()

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(taken) == sorted(submitted)


def test_a_worker_that_lost_its_lease_changes_nothing(store: TaskStore, clock: Clock) -> None:
    task = store.submit(REQUEST, max_attempts=3)
    store.claim_next("old", 10)
    clock.now += 11
    store.recover_expired()
    store.claim_next("new", 10)

    late_progress = store.report_progress(task.id, "old", TaskProgress(5, 10, 50))
    late_complete = store.complete(task.id, "old", {"path": "x"}, TaskProgress(10, 10, 99))
    late_beat = store.heartbeat(task.id, "old", 10)

    current = store.get(task.id)
    assert (late_progress, late_complete, late_beat) == (False, None, False)
    assert (current.state, current.lease_owner, current.attempts) == (TaskState.RUNNING, "new", 2)
    assert store.control(task.id, "old").lease_held is False
    assert store.control(task.id, "new").lease_held is True


def test_heartbeat_keeps_a_slow_task_from_being_recovered(store: TaskStore, clock: Clock) -> None:
    task = store.submit(REQUEST)
    store.claim_next("w", 10)

    for _ in range(5):
        clock.now += 6
        assert store.heartbeat(task.id, "w", 10)
        assert store.recover_expired() == []

    assert store.get(task.id).state == TaskState.RUNNING


def test_expired_lease_requeues_cancels_or_fails(store: TaskStore, clock: Clock) -> None:
    requeued = store.submit(REQUEST, max_attempts=2)
    cancelled = store.submit(REQUEST, max_attempts=2)
    exhausted = store.submit(REQUEST, max_attempts=1)
    for _ in range(3):
        store.claim_next("dead", 5)
    store.request_cancel(cancelled.id)
    clock.now += 6

    settled = {task.id: task for task in store.recover_expired()}

    assert settled[requeued.id].state == TaskState.PENDING
    assert settled[requeued.id].error is not None
    assert settled[requeued.id].error.kind == "RunnerLost"
    assert settled[cancelled.id].state == TaskState.CANCELLED
    assert settled[exhausted.id].state == TaskState.FAILED
    assert store.claim_next("alive", 5).id == requeued.id  # type: ignore[union-attr]


def test_cancel_pending_is_immediate_and_running_is_a_request(store: TaskStore) -> None:
    pending = store.submit(REQUEST)
    running = store.submit(REQUEST)
    store.claim_next("w", 30)  # takes `pending`, the older one
    pending, running = running, pending

    at_once = store.request_cancel(pending.id)
    asked = store.request_cancel(running.id)

    assert at_once.state == TaskState.CANCELLED and at_once.finished_at is not None
    assert asked.state == TaskState.RUNNING and asked.cancel_requested
    assert store.control(running.id, "w").cancel_requested
    assert store.mark_cancelled(running.id, "w").state == TaskState.CANCELLED  # type: ignore[union-attr]
    with pytest.raises(TaskStateError, match="already cancelled"):
        store.request_cancel(running.id)


def test_failure_with_retry_waits_until_its_time(store: TaskStore, clock: Clock) -> None:
    task = store.submit(REQUEST, max_attempts=3)
    store.claim_next("w", 30)
    error = TaskError("the store is busy; will retry", "TransientStoreError", True)

    store.fail(task.id, "w", error, retry_at=clock.now + 10)
    early = store.claim_next("w", 30)
    clock.now += 10
    due = store.claim_next("w", 30)

    assert early is None
    assert due is not None and due.id == task.id and due.attempts == 2
    assert due.error == error


def test_retry_puts_failed_and_cancelled_tasks_back(store: TaskStore) -> None:
    task = store.submit(REQUEST)
    store.claim_next("w", 30)
    store.fail(task.id, "w", TaskError("bad", "RequestError", False))

    again = store.retry(task.id)

    assert (again.state, again.attempts, again.error) == (TaskState.PENDING, 0, None)
    with pytest.raises(TaskStateError, match="only failed or cancelled"):
        store.retry(task.id)


def test_schedule_instant_creates_one_task_however_often_submitted(
    task_store_where: Path | str,
) -> None:
    created: list[bool] = []

    def submit() -> None:
        store = TaskStore(task_store_where)
        _, was_new = store.submit_scheduled(
            REQUEST, schedule_id="daily", scheduled_for_ns=1_700_000_000_000_000_000
        )
        created.append(was_new)
        store.close()

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(created) == [False] * 5 + [True]
    again = TaskStore(task_store_where)
    assert again.count() == 1
    again.close()


def test_lookups_name_what_is_wrong(store: TaskStore) -> None:
    task = store.submit(REQUEST)

    assert store.find(task.id[:8]).id == task.id
    with pytest.raises(NotFoundError, match="no task with id 'feedbeef'"):
        store.get("feedbeef")
    with pytest.raises(RequestError, match="invalid owner '../etc'"):
        store.submit(REQUEST, owner="../etc")


def test_list_filters_by_state_and_owner(store: TaskStore) -> None:
    mine = store.submit(REQUEST, owner="alice")
    store.submit(REQUEST, owner="bob")
    store.claim_next("w", 30)

    running = store.list(state=TaskState.RUNNING)
    alice = store.list(owner="alice")

    assert [t.id for t in running] == [mine.id]
    assert [t.id for t in alice] == [mine.id]
    assert store.count(TaskState.PENDING) == 1


def test_many_connections_opening_a_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    """Each tries the switch to WAL, which SQLite refuses at once while another holds a lock
    (seen in CI as "database is locked" from one of six submitting threads)."""
    from marketexport.tasks.database import SqliteTaskDatabase

    for round_ in range(20):
        path = tmp_path / f"tasks{round_}.sqlite3"
        errors: list[BaseException] = []

        def open_close(path: Path = path, errors: list[BaseException] = errors) -> None:
            try:
                SqliteTaskDatabase(path).close()
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=open_close) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
