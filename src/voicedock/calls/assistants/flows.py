"""An assistant's ``flow`` checked where what no type states is checked: the graph.

``check_config`` (``config.py``) decodes it by its type (``domain/flows.py``: names, sizes,
texts); here, on the decoded flow, each a 400 naming its place (``flow.nodes[1].next``): the
names unique, ``start`` and every target a node, every node reachable from ``start``, each
node moving on one way at most (``next``, ``branches``, ``choices`` or ``end``), a branch's
one condition fit for its field's type, the else last, a condition only on a field surely
extracted on the way there (by the node itself or by every path to it), a field one type
wherever it is extracted.
"""

from __future__ import annotations

from msgspec import UnsetType

from voicedock.domain.flows import FIELD_TYPES, Branch, Flow, FlowField, FlowNode
from voicedock.errors import BadRequest

FLOW = "flow"
_CONDITIONS = ("equals", "before", "after", "below", "above")
_OF_TYPE = {"before": "date", "after": "date", "below": "number", "above": "number"}
FLOW_WORDS: dict[str, str | tuple[str, str]] = {
    "start": "must be a node's name (1-40 of a-z, 0-9 and _)",
    "nodes": "must be a list of 1-30 nodes",
    "nodes.name": "must be 1-40 of a-z, 0-9 and _",
    "nodes.prompt": "must be a text of 1-4000 characters",
    "nodes.say": "must be a text of 1-1000 characters",
    "nodes.extract": "must be a list of at most 10 fields",
    "nodes.extract.name": "must be 1-40 of a-z, 0-9 and _",
    "nodes.extract.type": f"must be one of {', '.join(FIELD_TYPES)}",
    "nodes.extract.description": "must be a text of 1-500 characters",
    "nodes.extract.enum": "must be a list of 1-20 texts of 1-500 characters",
    "nodes.next": "must be a node's name",
    "nodes.branches": "must be a list of 1-10 branches",
    "nodes.branches.field": "must be a field's name",
    "nodes.branches.next": "must be a node's name",
    "nodes.branches.equals": "must be a string, number or boolean",
    "nodes.branches.before": 'must be a date, "YYYY-MM-DD"',
    "nodes.branches.after": 'must be a date, "YYYY-MM-DD"',
    "nodes.branches.below": "must be a number",
    "nodes.branches.above": "must be a number",
    "nodes.choices": "must be a list of 1-10 choices",
    "nodes.choices.next": "must be a node's name",
    "nodes.choices.description": "must be a text of 1-500 characters",
    "nodes.end": "must be true or false",
    "nodes.tools": "must be a list of at most 20 tool names (1-64 of A-Z, a-z, 0-9, _ and -)",
}


def check_flow_graph(flow: Flow) -> None:
    """The graph of a flow its type let through; ``BadRequest`` naming the place."""
    index = _names(flow)
    if flow.start not in index:
        raise BadRequest(f"{FLOW}.start {flow.start!r} is not one of the nodes")
    types: dict[str, str] = {}
    for i, node in enumerate(flow.nodes):
        _check_node(node, f"{FLOW}.nodes[{i}]", index, types)
    reached = _reachable(flow)
    for i, node in enumerate(flow.nodes):
        if node.name not in reached:
            raise BadRequest(f"{FLOW}.nodes[{i}] {node.name!r} cannot be reached from start")
    sure = _surely_extracted(flow, reached)
    for i, node in enumerate(flow.nodes):
        known = sure[node.name] | {f.name for f in node.fields}
        for j, branch in enumerate(node.branches or ()):
            field = branch.field
            if not isinstance(field, UnsetType) and field not in known:
                raise BadRequest(
                    f"{FLOW}.nodes[{i}].branches[{j}].field {field!r} is not extracted on "
                    "every way to this node (or by it)"
                )
            if not isinstance(field, UnsetType):
                _check_condition(branch, types[field], f"{FLOW}.nodes[{i}].branches[{j}]")


def _names(flow: Flow) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, node in enumerate(flow.nodes):
        if node.name in index:
            raise BadRequest(f"{FLOW}.nodes[{i}].name {node.name!r} names another node too")
        index[node.name] = i
    return index


def _check_node(node: FlowNode, where: str, index: dict[str, int], types: dict[str, str]) -> None:
    ways = [
        key
        for key in ("next", "branches", "choices")
        if not isinstance(getattr(node, key), UnsetType)
    ]
    if node.end:
        ways.append("end")
    if len(ways) > 1:
        raise BadRequest(f"{where} moves on one way: {' or '.join(ways)}, not both")
    if node.end and node.fields:
        raise BadRequest(f"{where}.extract: an end node extracts nothing (the call ends)")
    if not ways and node.fields:
        raise BadRequest(f"{where}.extract: a node extracts fields only on its way on")
    if not node.end and isinstance(node.prompt, UnsetType):
        raise BadRequest(f"{where}.prompt is required (the model's instructions in the node)")
    seen: set[str] = set()
    for j, field in enumerate(node.fields):
        _check_field(field, f"{where}.extract[{j}]", seen, types)
    for key in ways:
        if key == "next":
            _check_target(str(node.next), f"{where}.next", index)
        elif key == "choices":
            picks = [choice.next for choice in node.choices or ()]
            for j, pick in enumerate(picks):
                _check_target(pick, f"{where}.choices[{j}].next", index)
            if len(set(picks)) != len(picks):
                raise BadRequest(f"{where}.choices must name each node once")
        elif key == "branches":
            branches = node.branches or []
            for j, branch in enumerate(branches):
                _check_target(branch.next, f"{where}.branches[{j}].next", index)
                _check_branch_shape(branch, f"{where}.branches[{j}]", last=j == len(branches) - 1)


def _check_field(field: FlowField, where: str, seen: set[str], types: dict[str, str]) -> None:
    if field.name in seen:
        raise BadRequest(f"{where}.name {field.name!r} is extracted twice by this node")
    seen.add(field.name)
    if not isinstance(field.enum, UnsetType) and field.type != "string":
        raise BadRequest(f"{where}.enum is for a string field, not a {field.type}")
    if types.setdefault(field.name, field.type) != field.type:
        raise BadRequest(
            f"{where}.type: {field.name!r} is a {types[field.name]} where another node extracts it"
        )


def _check_target(target: str, where: str, index: dict[str, int]) -> None:
    if target not in index:
        raise BadRequest(f"{where} {target!r} is not one of the nodes")


def _check_branch_shape(branch: Branch, where: str, *, last: bool) -> None:
    """A branch holds one condition on its field, or none and no field (the else, last); the
    last is the else, so that a call never stays stuck in a node."""
    held = [key for key in _CONDITIONS if not isinstance(getattr(branch, key), UnsetType)]
    if isinstance(branch.field, UnsetType):
        if held:
            raise BadRequest(f"{where}: a condition ({held[0]}) needs a field")
        if not last:
            raise BadRequest(f"{where}: the branch without a condition (the else) comes last")
        return
    if len(held) != 1:
        raise BadRequest(f"{where} needs one condition: {', '.join(_CONDITIONS)}")
    if last:
        raise BadRequest(f"{where}: the last branch is the else (no field, no condition)")


def _check_condition(branch: Branch, kind: str, where: str) -> None:
    held = next(key for key in _CONDITIONS if not isinstance(getattr(branch, key), UnsetType))
    if held == "equals":
        value = branch.equals
        fits = {
            "string": isinstance(value, str),
            "date": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
        }[kind]
        if not fits:
            raise BadRequest(f"{where}.equals must be a {kind}, as the field is")
        return
    wanted = _OF_TYPE[held]
    if kind != wanted and not (wanted == "number" and kind == "integer"):
        raise BadRequest(f"{where}.{held} is for a {wanted} field, not a {kind}")


def _reachable(flow: Flow) -> set[str]:
    reached, todo = {flow.start}, [flow.start]
    while todo:
        for target in flow.node(todo.pop()).targets():
            if target not in reached:
                reached.add(target)
                todo.append(target)
    return reached


def _surely_extracted(flow: Flow, reached: set[str]) -> dict[str, set[str]]:
    """For each node, the fields extracted on every way from ``start`` to it (a forward
    data flow: what every node before it surely holds and extracts, intersected)."""
    every = {f.name for node in flow.nodes for f in node.fields}
    sure = {name: set() if name == flow.start else set(every) for name in reached}
    changed = True
    while changed:
        changed = False
        for node in flow.nodes:
            if node.name not in reached:
                continue
            out = sure[node.name] | {f.name for f in node.fields}
            for target in set(node.targets()):
                narrowed = sure[target] & out if target != flow.start else set()
                if narrowed != sure[target]:
                    sure[target] = narrowed
                    changed = True
    return sure
