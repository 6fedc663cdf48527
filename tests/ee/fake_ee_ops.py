"""Fake Earth Engine operations for the task tests (the injectable client of core.ee.tasks)."""

from __future__ import annotations


def op(task_id: str, state: str, description: str = "d", error: str | None = None, created: str = "2026-01-01T00:00:00Z") -> dict:
    o = {
        "name": f"projects/p/operations/{task_id}",
        "metadata": {"@type": "type.googleapis.com/google.earthengine.v1.OperationMetadata", "state": state,
                     "description": description, "type": "EXPORT_FEATURES", "createTime": created,
                     "destinationUris": ["https://console.cloud.google.com/storage/browser/b/x/"]},
    }
    if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
        o["done"] = True
    if error:
        o["error"] = {"code": 3, "message": error}
    return o


class FakeOps:
    """Scripted states per task id; records cancellations."""

    def __init__(self, script: dict[str, list[dict]]):
        self.script = {k: list(v) for k, v in script.items()}
        self.cancelled: list[str] = []

    def list_operations(self):
        return [v[0] for v in self.script.values()]

    def get_operation(self, name):
        seq = self.script[name.rsplit("/", 1)[-1]]
        return seq.pop(0) if len(seq) > 1 else seq[0]

    def cancel_operation(self, name):
        tid = name.rsplit("/", 1)[-1]
        self.cancelled.append(tid)
        self.script[tid] = [op(tid, "CANCELLING")]
