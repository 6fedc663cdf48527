"""Walking serialized Earth Engine expression graphs (``ee.serializer.encode`` output) in tests."""

from __future__ import annotations

from typing import Any, Iterator


def nodes(graph: Any) -> Iterator[dict]:
    """Every dict (value node) of a serialized graph, depth first."""
    if isinstance(graph, dict):
        yield graph
        for v in graph.values():
            yield from nodes(v)
    elif isinstance(graph, list):
        for v in graph:
            yield from nodes(v)


def constants(graph: Any) -> list:
    """Every ``constantValue`` of a graph."""
    return [n["constantValue"] for n in nodes(graph) if "constantValue" in n]


def arguments_of(graph: Any, function: str) -> list[dict]:
    """The arguments of every invocation of ``function`` (e.g. ``"Image.unmask"``) in a graph."""
    return [n["functionInvocationValue"]["arguments"] for n in nodes(graph)
            if isinstance(n.get("functionInvocationValue"), dict)
            and n["functionInvocationValue"].get("functionName") == function]


def resolved(graph: dict, node: dict) -> dict:
    """``node`` with a ``valueReference`` followed to the value it names in ``graph["values"]``."""
    while isinstance(node, dict) and "valueReference" in node:
        node = graph["values"][node["valueReference"]]
    return node


def function_of(graph: dict, node: dict) -> str | None:
    """The function a value node (or the value it refers to) invokes, or None."""
    return resolved(graph, node).get("functionInvocationValue", {}).get("functionName")
