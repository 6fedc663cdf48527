"""Earth Engine batch task monitor: list, poll, wait, cancel (exports and ingestions).

Tasks are Cloud API operations (``projects/<p>/operations/<ID>``). The client is injected:
anything with ``list_operations()``, ``get_operation(name)`` and ``cancel_operation(name)``;
:class:`EEOperationsClient` wraps ``ee.data``. A FAILED task raises :class:`EETaskFailedError`
carrying the task's own error message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

from core.ee.errors import EEPermissionError, EETaskFailedError, RetryPolicy, call_with_retries
from core.config import finite_number
from core.errors import ConfigError, EarthEngineError

#: Operation states -> the task states shown to users (as the EE Code Editor names them).
STATES = {
    "PENDING": "READY",
    "RUNNING": "RUNNING",
    "CANCELLING": "CANCEL_REQUESTED",
    "SUCCEEDED": "COMPLETED",
    "CANCELLED": "CANCELLED",
    "FAILED": "FAILED",
}
ACTIVE = frozenset({"READY", "RUNNING", "CANCEL_REQUESTED"})
FINISHED = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
#: The longest pause between two polls of a wait: a day (a task lives at most ten days).
MAX_POLL_SECONDS = 86400.0


def check_polling(poll_seconds: Any, timeout: Any, names: tuple[str, str] = ("poll_seconds", "timeout")) -> None:
    """Check the pace of a wait (:func:`wait_for`) before anything is asked of Earth Engine.

    Raises:
        ConfigError: ``poll_seconds`` not a number of seconds from 0 to a day, or ``timeout``
            neither None nor a number of seconds, 0 or more (each named as ``names`` gives).
    """
    poll_name, timeout_name = names
    if not finite_number(poll_seconds) or not 0 <= poll_seconds <= MAX_POLL_SECONDS:
        raise ConfigError(f"{poll_name} must be a number of seconds between polls, from 0 to {MAX_POLL_SECONDS:.0f} "
                          f"(a day), got {poll_seconds!r}")
    if timeout is not None and (not finite_number(timeout) or timeout < 0):
        raise ConfigError(f"{timeout_name} must be a number of seconds, 0 or more (or left out to wait until the "
                          f"tasks finish), got {timeout!r}")


def check_limit(limit: Any, name: str = "limit") -> None:
    """Raises ConfigError: ``limit`` neither None nor a whole number of tasks, 1 or more."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"{name} must be a number of tasks, 1 or more (or left out for all), got {limit!r}")


class OperationsClient(Protocol):
    def list_operations(self) -> list[dict]: ...

    def get_operation(self, name: str) -> dict: ...

    def cancel_operation(self, name: str) -> None: ...


class EEOperationsClient:
    """The real client: ``ee.data.listOperations/getOperation/cancelOperation``."""

    def list_operations(self) -> list[dict]:
        import ee

        return ee.data.listOperations()

    def get_operation(self, name: str) -> dict:
        import ee

        return ee.data.getOperation(name)

    def cancel_operation(self, name: str) -> None:
        import ee

        ee.data.cancelOperation(name)

    def operation_name(self, task_id: str) -> str:
        import ee
        from ee import _cloud_api_utils

        return _cloud_api_utils.convert_task_id_to_operation_name(ee.data._get_state().cloud_api_user_project, task_id)


@dataclass(frozen=True)
class TaskInfo:
    """A task's state and what to show about it."""

    id: str
    name: str
    description: str
    state: str
    task_type: str = ""
    error_message: str = ""
    progress: float | None = None
    created: str = ""
    updated: str = ""
    destination_uris: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def done(self) -> bool:
        return self.state in FINISHED


def _text(value: Any) -> str:
    """A field of an operation as text: "" for a missing or null one (a null description was a traceback)."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def task_info(op: dict) -> TaskInfo:
    """A :class:`TaskInfo` from a Cloud API operation dict (null or missing fields: empty)."""
    meta = op.get("metadata") if isinstance(op.get("metadata"), dict) else {}
    name = _text(op.get("name"))
    state = STATES.get(_text(meta.get("state")), "UNKNOWN")
    if op.get("done") and state not in FINISHED:
        state = "FAILED" if "error" in op else "COMPLETED"
    problem = op.get("error") if isinstance(op.get("error"), dict) else {}
    error = _text(problem.get("message")) if op.get("done") or state == "FAILED" else ""
    progress = meta.get("progress", 1.0 if state == "COMPLETED" else None)
    return TaskInfo(
        id=name.rsplit("/", 1)[-1],
        name=name,
        description=_text(meta.get("description")),
        state=state,
        task_type=_text(meta.get("type")),
        error_message=error,
        progress=float(progress) if finite_number(progress) else None,
        created=_text(meta.get("createTime")),
        updated=_text(meta.get("updateTime")),
        destination_uris=tuple(_text(u) for u in meta.get("destinationUris") or () if u)
        if isinstance(meta.get("destinationUris"), list) else (),
    )


#: what to change when a task of a kind (the operation's metadata type) ran out of memory
_MEMORY_ADVICE = {
    "EXPORT_FEATURES": "; export again with fewer points per task ('Points per task' in the dashboard's export "
                       "form, --points-per-task on the command line)",
    "EXPORT_IMAGE": "; export a smaller region, or with larger pixels (a coarser scale)",
}


def failure_message(info: TaskInfo) -> str:
    """What to show about a FAILED task: its own error message and what to change ('' otherwise)."""
    if info.state != "FAILED":
        return ""
    msg = info.error_message or "no error message"
    advice = ""
    low = msg.lower()
    if "memory" in low:
        advice = (_MEMORY_ADVICE.get(info.task_type.upper())
                  or "; try again with a smaller region or, for an export, larger pixels (a coarser scale)")
    elif "too many" in low or "limit" in low:
        advice = "; split the export into more tasks or a smaller region"
    elif "permission" in low or "bucket" in low or "access" in low:
        advice = "; check that the bucket exists and the Earth Engine account can write to it"
    if advice:
        msg = msg.rstrip(". ")  # "limit exceeded; use fewer ...", not "exceeded.; use"
    return f"Earth Engine task {info.description or info.id} failed: {msg}{advice}"


def raise_for_state(info: TaskInfo) -> TaskInfo:
    """Return ``info`` unless the task FAILED.

    Raises:
        EETaskFailedError: with the task's own error message and advice (:func:`failure_message`).
    """
    if info.state == "FAILED":
        raise EETaskFailedError(failure_message(info), info.id, info.error_message or "no error message")
    return info


def _client(client: OperationsClient | None) -> Any:
    return client if client is not None else EEOperationsClient()


def _name(client: Any, task_id: str) -> str:
    if task_id.startswith("projects/"):
        return task_id
    if hasattr(client, "operation_name"):
        return client.operation_name(task_id)
    for op in client.list_operations():
        if op.get("name", "").endswith("/" + task_id):
            return op["name"]
    raise EarthEngineError(f"no Earth Engine task with id {task_id}; list the tasks to see the current ones")


def _operation(client: Any, name: str, retry: RetryPolicy = RetryPolicy(),
               sleep: Callable[[float], None] = time.sleep) -> dict:
    """The operation ``name`` (retrying 429/5xx).

    Raises:
        EarthEngineError: no task of that id (Earth Engine's "not found" got the advice for an asset id);
            EarthEngineError subclasses for other failures after retries.
    """
    try:
        return call_with_retries(lambda: client.get_operation(name), retry, sleep=sleep)
    except EEPermissionError as err:
        if "not found" not in str(err).lower():
            raise
        task_id = name.rsplit("/", 1)[-1]
        raise EarthEngineError(f"no Earth Engine task with id {task_id} (Earth Engine does not know it); list the "
                               "tasks to see the current ones (python -m core ee-tasks, or the Earth Engine page)") from err


def list_tasks(client: OperationsClient | None = None, active_only: bool = False, limit: int | None = None) -> list[TaskInfo]:
    """The account's recent tasks, newest first (the first ``limit`` of them, if given).

    Raises:
        ConfigError: a ``limit`` :func:`check_limit` refuses.
        EarthEngineError subclasses: when Earth Engine cannot be reached (after retries).
    """
    check_limit(limit)
    c = _client(client)
    ops = call_with_retries(c.list_operations)
    infos = sorted((task_info(o) for o in ops), key=lambda t: t.created, reverse=True)
    if active_only:
        infos = [t for t in infos if t.active]
    return infos[:limit] if limit is not None else infos


def get_task(task_id: str, client: OperationsClient | None = None) -> TaskInfo:
    """The current state of one task (id or operation name).

    Raises:
        EarthEngineError subclasses: unknown task, or Earth Engine failures after retries.
    """
    c = _client(client)
    name = _name(c, task_id)
    return task_info(_operation(c, name))


def cancel_task(task_id: str, client: OperationsClient | None = None) -> TaskInfo:
    """Ask Earth Engine to cancel a task; returns its state afterwards (CANCEL_REQUESTED/CANCELLED,
    or the final state if it had already finished).

    Raises:
        EEPermissionError: Earth Engine refused the cancel (a task of another account or project).
        EarthEngineError subclasses: unknown task, or Earth Engine failures after retries.
    """
    c = _client(client)
    name = _name(c, task_id)
    info = task_info(_operation(c, name))
    if info.done:
        return info
    try:
        call_with_retries(lambda: c.cancel_operation(name))
    except EEPermissionError as err:  # (its words were about asset ids)
        raise EEPermissionError(f"Earth Engine refused to cancel task {info.id}: it may belong to another account or "
                                f"Cloud project than the one this app uses (Earth Engine said: "
                                f"{str(err.__cause__ or err)[:200]})") from err
    return task_info(_operation(c, name))


def wait_for(
    task_ids: Sequence[str],
    client: OperationsClient | None = None,
    poll_seconds: float = 30.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[int, int, str], None] | None = None,
    retry: RetryPolicy = RetryPolicy(),
) -> list[TaskInfo]:
    """Poll until every task is finished; return their final infos (in the given order, each task once).

    Raises:
        ConfigError: a pace :func:`check_polling` refuses (before any request).
        EETaskFailedError: as soon as one task FAILED (its message included).
        EarthEngineError: a task was CANCELLED, or ``timeout`` seconds passed (tasks keep running).
    """
    check_polling(poll_seconds, timeout)
    c = _client(client)
    names = list(dict.fromkeys(_name(c, t) for t in task_ids))  # a task named twice (by id and by name): once
    start = clock()
    final: dict[str, TaskInfo] = {}
    while True:
        for name in names:
            if name in final:
                continue
            info = task_info(_operation(c, name, retry, sleep))
            raise_for_state(info)
            if info.state == "CANCELLED":
                raise EarthEngineError(f"Earth Engine task {info.description or info.id} was cancelled")
            if info.done:
                final[name] = info
        if progress is not None:
            progress(len(final), len(names), f"{len(final)}/{len(names)} Earth Engine tasks finished")
        if len(final) == len(names):
            return [final[n] for n in names]
        if timeout is not None and clock() - start >= timeout:
            raise EarthEngineError(
                f"{len(names) - len(final)} Earth Engine task(s) still running after {timeout:.0f} s; "
                "they keep running on the server: check them later in the task list"
            )
        sleep(poll_seconds)


def task_rows(infos: Iterable[TaskInfo]) -> list[dict]:
    """Plain rows of tasks for tables and JSON: id, state, active, description, type, progress, created, error,
    failure (:func:`failure_message`: the error with what to change, '' unless FAILED)."""
    return [{"id": t.id, "state": t.state, "active": t.active, "description": t.description, "type": t.task_type,
             "progress": t.progress, "created": t.created, "error": t.error_message, "failure": failure_message(t),
             "destinations": list(t.destination_uris)} for t in infos]


def summarize(infos: Iterable[TaskInfo]) -> dict[str, int]:
    """Count of tasks per state."""
    out: dict[str, int] = {}
    for info in infos:
        out[info.state] = out.get(info.state, 0) + 1
    return out


def state_words(task_state: str) -> str:
    """A task's state in words ("CANCEL_REQUESTED" -> "cancel requested")."""
    return task_state.lower().replace("_", " ")


#: a task's state as the dashboard's task list says it (waiting and running: what its filter says)
STATE_LABELS = {"READY": "waiting", "RUNNING": "running", "CANCEL_REQUESTED": "stopping", "COMPLETED": "done",
                "CANCELLED": "cancelled", "FAILED": "failed"}


def state_label(task_state: str) -> str:
    """A task's state as the task list says it (:data:`STATE_LABELS`; another as :func:`state_words`)."""
    return STATE_LABELS.get(task_state, state_words(task_state))


def cancel_outcome(info: TaskInfo) -> str:
    """What a cancel request did to the task ``info`` (what :func:`cancel_task` returned), in words."""
    what = ("cancel requested; Earth Engine stops it shortly" if info.state == "CANCEL_REQUESTED"
            else state_words(info.state))
    return f"{info.description or info.id}: {what}"


def ingestion_note(rows: Sequence[dict], task_id: str, asset_id: str) -> tuple[bool, str] | None:
    """(failed, what to say) about ``asset_id`` while its ingestion task ``task_id`` (among ``rows``,
    :func:`task_rows`) has not completed: its tiles do not exist yet, or never will; None when it
    completed or is not among the rows (an older task, no longer listed)."""
    row = next((r for r in rows if r["id"] == task_id), None)
    if row is None or row["state"] == "COMPLETED":
        return None
    if row["state"] == "FAILED":
        return True, f"{asset_id} was not made. {row['failure']}"
    return False, (f"{asset_id} is being made by ingestion task {task_id} ({state_words(row['state'])}); it shows "
                   "here when the task has completed (Refresh on the Tasks tab to look again).")
