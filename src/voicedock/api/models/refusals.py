"""How a body its model refuses reads: msgspec's error naming the field (``limit: expected
`int` >= 1``), or, where a field states it (``refusal``), its own words and title.

A field states its refusal where the documented API fixes it: the seed's title of a
destination that is no E.164 number (``Invalid destination format``), or a message clients
and the tests rely on ("metadata must be a JSON object"). The words cover every refusal of the
annotated value (its type, its bounds, a missing required field), and ``{field}`` in them is
where the field is (``contacts[0].variables``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import msgspec.inspect as mi
from msgspec import Meta

from voicedock.domain.json import value_at
from voicedock.errors import BadRequest

_REFUSAL = "refusal"
_WHERE = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_KEY_WHERE = re.compile(r" - at `key` in `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`")
_LENGTH = re.compile(r"^Expected `[a-z]+` of length (?P<op>[<>]=) ")
_STEP = re.compile(r"\.?(?P<field>[^.\[]+)|\[(?P<index>[0-9]+|\.\.\.)\]")
_NAMED = "\x00"  # a step into a mapping's value, its key after it: "\x00busy"
_KEY = "`key`"  # a step into a mapping's key (msgspec: "at `key` in `$.variables`")
_VALUE = "..."  # a step into a mapping's value (msgspec: "$.variables[...]")


def refusal(
    message: str = "",
    error: str = BadRequest.error,
    *,
    shorter: str | None = None,
    longer: str | None = None,
    reader: Reader | None = None,
    deep: bool = True,
    unknown: bool = False,
) -> Meta:
    """``Annotated[T, ..., refusal(message, error)]``: every refusal of the value answers
    ``400`` with this title and message (``{field}``: where the field is); a list's or a
    text's length below its minimum with ``shorter``, above its maximum with ``longer``, where
    they are given; with a ``reader``, in the words it refuses the value with. ``deep``: the
    refusal of what is inside the value too (a field of it without a refusal of its own);
    ``unknown``: of a field the value does not know too."""
    return Meta(extra={_REFUSAL: Refusal(message, error, shorter, longer, reader, deep, unknown)})


# Words a refused value as a reader of calls/json_readers.py or validation.py does (its
# ``BadRequest``, title included): the value as sent (None: absent), where the field is.
Reader = Callable[[object, str], object]


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a field states it answers when refused."""

    message: str
    error: str = BadRequest.error
    shorter: str | None = None
    longer: str | None = None
    reader: Reader | None = None
    deep: bool = True
    unknown: bool = False

    def answer(self, error: str, value: object, field: str) -> BadRequest | None:
        """The ``400`` of ``value`` msgspec refused with ``error`` (``value``: _UNREAD when it
        cannot be found); None: msgspec's own words (a reader that does not refuse it)."""
        if self.reader is not None and value is not _UNREAD:
            try:
                self.reader(value, field)
            except BadRequest as refused:
                return refused
        length = _LENGTH.match(error)
        bound = None if length is None else self.shorter if length["op"] == ">=" else self.longer
        message = self.message if bound is None else bound
        return BadRequest(message.format(field=field), error=self.error) if message else None


def refused(
    error: msgspec.ValidationError,
    model: type[msgspec.Struct],
    name: str = "body",
    value: object = None,
    whole: Refusal | None = None,
) -> BadRequest:
    """The ``400`` of ``value`` ``model`` refused (``name``: what the value is, "body" or a
    field's or a line's name; ``whole``: the model's own refusal, of a value that is no
    object)."""
    text = str(error)
    steps = _keys_named(_info(model), _steps(text), value)
    unknown = _UNKNOWN.match(text) is not None
    found = _refusal_on(model, steps)
    if not steps and whole is not None and not unknown:
        found = (whole, "", 0)
    # An unknown key is the refusal's own to word at its depth, and its reader's deeper (a
    # configuration's provider section: the check names the key and why).
    deeper = found is not None and found[0].reader is not None
    if (
        found is not None
        and unknown
        and not (found[0].unknown and (found[2] == len(steps) or deeper))
    ):
        found = None
    if found is not None:
        stated, where, depth = found
        field = where if name == "body" and where else f"{name}.{where}" if where else name
        answer = stated.answer(text, _value_at(value, steps[:depth]), field)
        if answer is not None:
            return answer
    return BadRequest(field_message(text, name))


def field_message(error: str, name: str = "body") -> str:
    """msgspec's ``Expected `int` >= 1 - at `$.limit``` as ``limit: expected `int` >= 1``."""
    match = _WHERE.search(error)
    where = name
    if match is not None:
        error = error[: match.start()]
        path = match["path"]
        where = path if name == "body" else f"{name}.{path}" if path else name
        where = where or name
    unknown = _UNKNOWN.match(error)
    if unknown is not None:
        return f"{where}: unknown field(s): {unknown['name']}"
    return f"{where}: {error[:1].lower()}{error[1:]}"


def _steps(error: str) -> list[str]:
    """Where msgspec's error is, as steps from the model (a field's name, an index, ``_KEY``
    or ``_VALUE`` of a mapping); of an unknown field: the object that has it."""
    key = _KEY_WHERE.search(error)
    at = key or _WHERE.search(error)
    path = at["path"] if at is not None else ""
    steps = [m["field"] or m["index"] for m in _STEP.finditer(path)]
    if key is not None:
        steps.append(_KEY)
    missing = _MISSING.match(error)
    if missing is not None:
        steps.append(missing["name"])
    return steps


def _refusal_on(model: type[msgspec.Struct], steps: list[str]) -> tuple[Refusal, str, int] | None:
    """The innermost refusal stated on the way to the value ``steps`` lead to, where the value
    it is stated on is (a mapping's keys and values: where the mapping is) and how many steps
    lead to it."""
    node = _info(model)
    found: tuple[Refusal, str, int] | None = None
    path = ""
    for depth, step in enumerate([*steps, None]):
        node, words = _unwrap(node, step)
        if words is not None and (words.deep or step is None):
            found = (words, path, depth)
        if step is None or isinstance(node, mi.AnyType):
            break
        node, path = _into(node, step, path)
    return found


# A body that is no JSON object, in the words of calls/json_readers.py (``body must be a JSON
# object``).
JSON_OBJECT = Refusal("{field} must be a JSON object")
_UNREAD = object()  # a value a refusal cannot be worded from (a mapping's key or value)


def _keys_named(node: mi.Type, steps: list[str], value: object) -> list[str]:
    """``steps`` with a step into a mapping's value (msgspec says ``[...]``) named by its key,
    where the mapping's values are models: the first entry its model refuses (msgspec reads a
    mapping in order)."""
    named: list[str] = []
    for step in steps:
        node, _ = _unwrap(node, step)
        if step == _VALUE and isinstance(node, mi.DictType) and isinstance(value, dict):
            model = _unwrap(node.value_type, None)[0]
            if isinstance(model, mi.StructType):
                key = next((k for k, v in value.items() if not _fits(v, model.cls)), None)
                if isinstance(key, str):
                    step = _NAMED + key
        named.append(step)
        node, _ = _into(node, step, "")
        value = _value_at(value, [step])
    return named


def _fits(value: object, model: type[msgspec.Struct]) -> bool:
    try:
        msgspec.convert(value, model, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def _value_at(value: object, steps: list[str]) -> object:
    """The value ``steps`` lead to in the parsed JSON (None: a field not sent); a mapping's
    key or value msgspec does not name (``_KEY``, ``_VALUE``) is _UNREAD."""
    if _KEY in steps or _VALUE in steps:
        return _UNREAD
    return value_at(value, [step.removeprefix(_NAMED) for step in steps], _UNREAD)


def _unwrap(node: mi.Type, step: str | None) -> tuple[mi.Type, Refusal | None]:
    """``node`` without its metadata and the union members ``step`` does not go into; the
    refusal its metadata states."""
    words: Refusal | None = None
    while True:
        if isinstance(node, mi.Metadata):
            stated = (node.extra or {}).get(_REFUSAL)
            words = stated if stated is not None else words
            node = node.type
        elif isinstance(node, mi.UnionType):
            members = [t for t in node.types if _goes_into(t, step)]
            if not members:
                return node, words
            node = members[0]
        else:
            return node, words


def _goes_into(node: mi.Type, step: str | None) -> bool:
    """Whether ``step`` can go into ``node`` (at the end: any member but null)."""
    while isinstance(node, mi.Metadata):
        node = node.type
    if step is None:
        return not isinstance(node, mi.NoneType)
    if step in (_KEY, _VALUE) or step.startswith(_NAMED):
        return isinstance(node, mi.DictType)
    if step.isdigit():
        return isinstance(node, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType)
    return isinstance(node, mi.StructType)


def _into(node: mi.Type, step: str, path: str) -> tuple[mi.Type, str]:
    """The type one ``step`` below ``node``, and the path to it."""
    if isinstance(node, mi.DictType):
        if step.startswith(_NAMED):
            return node.value_type, f"{path}.{step[1:]}"
        return (node.key_type if step == _KEY else node.value_type), path
    if isinstance(node, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return node.item_type, f"{path}[{step}]"
    if isinstance(node, mi.StructType):
        for f in node.fields:
            if f.encode_name == step:
                return f.type, f"{path}.{step}" if path else step
    return mi.AnyType(), path


_INFO: dict[type[msgspec.Struct], mi.Type] = {}


def _info(model: type[msgspec.Struct]) -> mi.Type:
    """The model's type, as msgspec sees it (read once per model)."""
    if model not in _INFO:
        _INFO[model] = mi.type_info(model)
    return _INFO[model]
