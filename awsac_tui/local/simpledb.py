"""SimpleDB for the local cloud: its Query API as AWS documents it, on moto's SimpleDB backend.

moto 5.2.5 lacks select, conditional puts and deletes, batches and metadata, reads numbered
parameters only from 1 without gaps, routes GET requests to S3 and answers raw control characters.
The server hands every request of API version 2009-04-15 (GET or POST) to ``handle``; moto keeps
the data (``sdb_backends``), this module parses, checks, evaluates and answers.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import io
import json
import re
import time
import urllib.parse
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import ServiceException

from awsac_tui.local.common import ACCOUNT_ID, REGION

DEFAULT_LIMIT = 100
MAX_LIMIT = 2500
MAX_PAGE_BYTES = 1024 * 1024
MAX_BATCH_ITEMS = 25
MAX_ATTRIBUTES_PER_CALL = 256
MAX_VALUE_BYTES = 1024
BOX_USAGE = 0.0000219907
MAX_DOMAINS_PER_PAGE = 100
API_VERSION = "2009-04-15"
XMLNS = "http://sdb.amazonaws.com/doc/2009-04-15/"


# ---- errors (codes as SimpleDB documents them) --------------------------------------------------


class SimpleDBError(ServiceException):
    box_usage = BOX_USAGE
    status = 400  # the HTTP status SimpleDB answers this error with (API Error Codes table)


class InvalidQueryExpression(SimpleDBError):
    code = "InvalidQueryExpression"


class InvalidSortExpression(SimpleDBError):
    code = "InvalidSortExpression"


class InvalidNextToken(SimpleDBError):
    code = "InvalidNextToken"
    message = "The specified next token is not valid."


class ConditionalCheckFailed(SimpleDBError):
    code = "ConditionalCheckFailed"
    status = 409


class AttributeDoesNotExist(SimpleDBError):
    code = "AttributeDoesNotExist"
    status = 404


class MissingParameter(SimpleDBError):
    code = "MissingParameter"


class InvalidParameterValue(SimpleDBError):
    code = "InvalidParameterValue"


class IncompleteExpectedExpression(SimpleDBError):
    code = "IncompleteExpectedExpression"
    message = "If Expected.Exists=true or unspecified, then Expected.Value has to be specified"


class ExistsAndExpectedValue(SimpleDBError):
    code = "ExistsAndExpectedValue"
    message = "Expected.Exists=false and Expected.Value cannot be specified together"


class NumberSubmittedItemsExceeded(SimpleDBError):
    code = "NumberSubmittedItemsExceeded"
    message = "Too many items in a single call. Up to 25 items per call allowed."
    status = 409


class NumberSubmittedAttributesExceeded(SimpleDBError):
    code = "NumberSubmittedAttributesExceeded"
    message = "Too many attributes for this item. Up to 256 attributes per call allowed."
    status = 409


class DuplicateItemName(SimpleDBError):
    code = "DuplicateItemName"


class MultiValuedAttribute(SimpleDBError):
    code = "MultiValuedAttribute"
    status = 409


class InvalidAction(SimpleDBError):
    code = "InvalidAction"


class NoSuchDomain(SimpleDBError):
    code = "NoSuchDomain"
    message = "The specified domain does not exist."


# ---- the select language ------------------------------------------------------------------------

# The reserved words of the Select Quoting Rules: an attribute or domain of one of these names must be
# backtick-quoted. ``count`` and ``itemName`` are not among them (they are functions only before "(").
KEYWORDS = {
    "or",
    "and",
    "not",
    "from",
    "where",
    "select",
    "like",
    "null",
    "is",
    "order",
    "by",
    "asc",
    "desc",
    "in",
    "between",
    "intersection",
    "limit",
    "every",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<name>`(?:[^`]|``)*`)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<num>\d+(?![A-Za-z_$]))
  | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<punct>[(),*])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # name, str, num, word, op, punct, end
    text: str
    pos: int


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise InvalidQueryExpression(
                f"The specified query expression syntax is not valid: unexpected "
                f"{expression[pos : pos + 10]!r} at position {pos}."
            )
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "name":
            tokens.append(Token("name", text[1:-1].replace("``", "`"), pos))
        elif kind == "str":
            quote = text[0]
            tokens.append(Token("str", text[1:-1].replace(quote * 2, quote), pos))
        elif kind != "ws":
            tokens.append(Token(kind, text, pos))
        pos = match.end()
    tokens.append(Token("end", "", pos))
    return tokens


@dataclass(frozen=True)
class Predicate:
    """``target op operands``; target is an attribute name or None for itemName()."""

    attribute: str | None
    every: bool
    op: str  # = != < > <= >= like notlike in notin between isnull isnotnull
    operands: tuple[str, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # and, or, not, intersection
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    output: str  # "*", "itemName", "count", "attributes"
    attributes: tuple[str, ...]
    domain: str
    where: Any
    order_by: str | None  # attribute, or "" for itemName()
    descending: bool
    limit: int | None  # None: the default (100 items; no cap for count(*))


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.i = 0

    def fail(self, why: str) -> InvalidQueryExpression:
        token = self.tokens[self.i]
        where = f"at position {token.pos}" if token.kind != "end" else "at the end"
        return InvalidQueryExpression(
            f"The specified query expression syntax is not valid: {why} {where}."
        )

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_kw(self, word: str, offset: int = 0) -> bool:
        token = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return token.kind == "word" and token.text.lower() == word

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.fail(f"expected '{word}'")
        self.i += 1

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            raise self.fail(f"expected {text or kind!r}")
        self.i += 1
        return token

    def attribute_name(self) -> str:
        token = self.peek()
        if token.kind == "name":
            self.i += 1
            return token.text
        if token.kind == "word" and token.text.lower() not in KEYWORDS:
            self.i += 1
            return token.text
        raise self.fail("expected an attribute name (quote reserved words with backticks)")

    def item_name_call(self) -> bool:
        if self.is_kw("itemname") and self.tokens[self.i + 1].text == "(":
            self.i += 1
            self.expect("punct", "(")
            self.expect("punct", ")")
            return True
        return False

    def parse(self) -> Query:
        self.expect_kw("select")
        attributes: tuple[str, ...] = ()
        if self.peek().text == "*":
            self.i += 1
            output = "*"
        elif self.item_name_call():
            output = "itemName"
        elif self.is_kw("count") and self.tokens[self.i + 1].text == "(":
            self.i += 1
            self.expect("punct", "(")
            self.expect("punct", "*")
            self.expect("punct", ")")
            output = "count"
        else:
            names = [self.attribute_name()]
            while self.peek().text == ",":
                self.i += 1
                names.append(self.attribute_name())
            if len(names) > MAX_ATTRIBUTES_PER_CALL:
                raise self.fail("too many attributes requested")
            output, attributes = "attributes", tuple(names)
        self.expect_kw("from")
        domain = self.attribute_name()
        where = None
        if self.is_kw("where"):
            self.i += 1
            where = self.or_expr()
        order_by: str | None = None
        descending = False
        if self.is_kw("order"):
            self.i += 1
            self.expect_kw("by")
            order_by = "" if self.item_name_call() else self.attribute_name()
            if self.is_kw("asc"):
                self.i += 1
            elif self.is_kw("desc"):
                self.i += 1
                descending = True
        limit: int | None = None
        if self.is_kw("limit"):
            self.i += 1
            token = self.expect("num")
            limit = int(token.text)
            # "The default result limit of 100 and maximum result limit of 2500 do not apply to
            # count(*)" (SimpleDB Developer Guide, Count)
            top = None if output == "count" else MAX_LIMIT
            if limit < 1 or (top is not None and limit > top):
                raise InvalidQueryExpression(
                    f"The limit {limit} is not valid: it must be between 1 and {MAX_LIMIT}"
                    + (" (count(*) takes any positive limit)." if top else ".")
                )
        if self.peek().kind != "end":
            raise self.fail(f"unexpected {self.peek().text!r}")
        if order_by:
            if not _constrains(where, order_by):
                raise InvalidSortExpression(
                    f"The sort attribute {order_by!r} must be present in at least one of the "
                    "predicates, and the predicate cannot use 'is null'."
                )
        return Query(output, attributes, domain, where, order_by, descending, limit)

    def or_expr(self) -> Any:
        parts = [self.and_expr()]
        while self.is_kw("or"):
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_expr(self) -> Any:
        # intersection binds like and, but compares each side with the item on its own
        parts = [self.and_only()]
        while self.is_kw("intersection"):
            self.i += 1
            parts.append(self.and_only())
        return parts[0] if len(parts) == 1 else BoolOp("intersection", tuple(parts))

    def and_only(self) -> Any:
        parts = [self.not_expr()]
        while self.is_kw("and"):
            self.i += 1
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def not_expr(self) -> Any:
        if self.is_kw("not"):
            self.i += 1
            return BoolOp("not", (self.not_expr(),))
        if self.peek().text == "(":
            self.i += 1
            inner = self.or_expr()
            self.expect("punct", ")")
            return inner
        return self.predicate()

    def value(self) -> str:
        token = self.peek()
        if token.kind != "str":
            raise self.fail("expected a quoted value")
        self.i += 1
        return token.text

    def predicate(self) -> Predicate:
        every = False
        attribute: str | None
        if self.item_name_call():
            attribute = None
        elif self.is_kw("every") and self.tokens[self.i + 1].text == "(":
            self.i += 1
            self.expect("punct", "(")
            attribute = self.attribute_name()
            self.expect("punct", ")")
            every = True
        else:
            attribute = self.attribute_name()
        token = self.peek()
        if token.kind == "op":
            self.i += 1
            return Predicate(attribute, every, token.text, (self.value(),))
        negated = False
        if self.is_kw("not"):
            self.i += 1
            negated = True
        if self.is_kw("like"):
            self.i += 1
            return Predicate(attribute, every, "notlike" if negated else "like", (self.value(),))
        if self.is_kw("in"):
            self.i += 1
            self.expect("punct", "(")
            values = [self.value()]
            while self.peek().text == ",":
                self.i += 1
                values.append(self.value())
            self.expect("punct", ")")
            return Predicate(attribute, every, "notin" if negated else "in", tuple(values))
        if negated:
            raise self.fail("expected 'like' or 'in' after 'not'")
        if self.is_kw("between"):
            self.i += 1
            low = self.value()
            self.expect_kw("and")
            return Predicate(attribute, every, "between", (low, self.value()))
        if self.is_kw("is"):
            self.i += 1
            if self.is_kw("not"):
                self.i += 1
                self.expect_kw("null")
                return Predicate(attribute, every, "isnotnull", ())
            self.expect_kw("null")
            return Predicate(attribute, every, "isnull", ())
        raise self.fail("expected a comparison operator")


def _constrains(node: Any, attribute: str) -> bool:
    if node is None:
        return False
    if isinstance(node, Predicate):
        return node.attribute == attribute and node.op != "isnull"
    return any(_constrains(part, attribute) for part in node.parts)


def parse_select(expression: str) -> Query:
    """Parse a SimpleDB select expression; InvalidQueryExpression when it is not valid."""
    if not expression or not expression.strip():
        raise InvalidQueryExpression("The specified query expression syntax is not valid.")
    return _Parser(expression).parse()


def _like(pattern: str) -> re.Pattern[str]:
    """``%`` matches any run of characters; a backslash makes the next character literal."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        else:
            out.append(re.escape(char))
    return re.compile("^" + "".join(out) + "$", re.DOTALL)


def _test(op: str, value: str, operands: tuple[str, ...]) -> bool:
    if op == "=":
        return value == operands[0]
    if op == "!=":
        return value != operands[0]
    if op == "<":
        return value < operands[0]
    if op == ">":
        return value > operands[0]
    if op == "<=":
        return value <= operands[0]
    if op == ">=":
        return value >= operands[0]
    if op == "like":
        return bool(_like(operands[0]).match(value))
    if op == "notlike":
        return not _like(operands[0]).match(value)
    if op == "in":
        return value in operands
    if op == "notin":
        return value not in operands
    if op == "between":
        return operands[0] <= value <= operands[1]
    raise AssertionError(op)


_MIXED = object()


def _one_attribute(node: Any) -> Any:
    """The attribute every comparison of ``node`` tests (_MIXED if several, every() or null)."""
    if isinstance(node, Predicate):
        if node.attribute is None or node.every or node.op in ("isnull", "isnotnull"):
            return _MIXED
        return node.attribute
    if node.op == "intersection":
        return _MIXED
    found = {_one_attribute(part) for part in node.parts}
    return found.pop() if len(found) == 1 else _MIXED


def _value_matches(node: Any, value: str) -> bool:
    if isinstance(node, Predicate):
        return _test(node.op, value, node.operands)
    if node.op == "and":
        return all(_value_matches(p, value) for p in node.parts)
    if node.op == "or":
        return any(_value_matches(p, value) for p in node.parts)
    return not _value_matches(node.parts[0], value)


def matches(node: Any, name: str, attributes: dict[str, list[str]]) -> bool:
    """Whether the item ``name`` with ``attributes`` satisfies the where-expression ``node``.

    As SimpleDB documents for multi-valued attributes, comparisons of one attribute joined by
    ``and``/``or`` form one predicate, which one value must satisfy on its own: ``a = 'x' and
    a = 'y'`` matches no item; ``a = 'x' intersection a = 'y'`` matches items having both.
    """
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.op in ("and", "or"):
            attribute = _one_attribute(node)
            if attribute is not _MIXED:
                return any(_value_matches(node, v) for v in attributes.get(attribute, []))
        if node.op in ("and", "intersection"):
            return all(matches(p, name, attributes) for p in node.parts)
        if node.op == "or":
            return any(matches(p, name, attributes) for p in node.parts)
        return not matches(node.parts[0], name, attributes)
    values = [name] if node.attribute is None else attributes.get(node.attribute, [])
    if node.op == "isnull":
        return not values
    if node.op == "isnotnull":
        return bool(values)
    if node.every:
        return bool(values) and all(_test(node.op, v, node.operands) for v in values)
    return any(_test(node.op, v, node.operands) for v in values)


# ---- the backend ----------------------------------------------------------------------------------


def _as_bool(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def _item_dict(item: Any) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attr in item.attributes:
        values.setdefault(attr["Name"], []).append(attr["Value"])
    return values


# ---- the index -----------------------------------------------------------------------------------

_MAX_CHAR = chr(0x10FFFF)


class DomainIndex:
    """What lets a select cost what it returns instead of a scan of the whole domain.

    ``order``: each item's place in the domain's dict (the order a scan, and so a page without
    ``order by``, visits items in). ``sorted``: per attribute that a select has compared, its
    sorted (value, item name) pairs; ``None`` holds the item names (for ``itemName()``). An
    attribute's list is built on its first select and kept by ``_put`` and ``_delete`` from
    then on. A domain whose items changed behind the index's back (its item count disagrees)
    gets a new index.
    """

    def __init__(self, domain: Any) -> None:
        self.order: dict[str, int] = {name: i for i, name in enumerate(domain.items)}
        self.next = len(self.order)
        self.sorted: dict[str | None, list[tuple[str, str]]] = {}

    def pairs(self, domain: Any, attribute: str | None) -> list[tuple[str, str]]:
        found = self.sorted.get(attribute, None)
        if found is None:
            if attribute is None:
                found = sorted((n, n) for n in domain.items)
            else:
                found = sorted(
                    (a["Value"], name)
                    for name, item in domain.items.items()
                    for a in item.attributes
                    if a["Name"] == attribute
                )
            self.sorted[attribute] = found
        return found

    def _of(self, item: Any) -> set[tuple[str | None, str]]:
        return {(a["Name"], a["Value"]) for a in item.attributes if a["Name"] in self.sorted}

    def before(self, domain: Any, item_name: str) -> tuple[bool, set[tuple[str | None, str]]]:
        item = domain.items.get(item_name)
        return item is not None, (set() if item is None else self._of(item))

    def after(
        self, domain: Any, item_name: str, before: tuple[bool, set[tuple[str | None, str]]]
    ) -> None:
        existed, old = before
        item = domain.items.get(item_name)
        new = set() if item is None else self._of(item)
        exists = item is not None
        if exists and not existed:
            self.order[item_name] = self.next
            self.next += 1
            if None in self.sorted:
                new.add((None, item_name))
        elif existed and not exists:
            self.order.pop(item_name, None)
            if None in self.sorted:
                old.add((None, item_name))
        for attribute, value in old - new:
            pairs = self.sorted[attribute]
            at = bisect.bisect_left(pairs, (value, item_name))
            if at < len(pairs) and pairs[at] == (value, item_name):
                del pairs[at]
        for attribute, value in new - old:
            bisect.insort(self.sorted[attribute], (value, item_name))

    def span(self, domain: Any, node: Predicate) -> tuple[list[tuple[str, str]], int, int] | None:
        """The slice of an attribute's pairs that holds every value ``node`` can match (a
        superset: the caller tests each item), or None when the index cannot narrow it."""
        op, ops = node.op, node.operands
        if op in ("!=", "notlike", "notin", "isnull") or op == "in":
            return None  # "in" is a union of spans: see candidates
        pairs = self.pairs(domain, node.attribute)

        def at(value: str) -> int:
            return bisect.bisect_left(pairs, (value,))

        def above(value: str) -> int:  # the first pair whose value is greater than ``value``
            return bisect.bisect_left(pairs, (value + "\0",))

        if op == "=":
            return pairs, at(ops[0]), above(ops[0])
        if op == ">":
            return pairs, above(ops[0]), len(pairs)
        if op == ">=":
            return pairs, at(ops[0]), len(pairs)
        if op == "<":
            return pairs, 0, at(ops[0])
        if op == "<=":
            return pairs, 0, above(ops[0])
        if op == "between":
            return pairs, at(ops[0]), above(ops[1])
        if op == "isnotnull":
            return pairs, 0, len(pairs)
        if op == "like":
            prefix = _like_prefix(ops[0])
            if not prefix:
                return pairs, 0, len(pairs)
            if prefix[-1] == _MAX_CHAR:
                return None
            return pairs, at(prefix), at(prefix[:-1] + chr(ord(prefix[-1]) + 1))
        raise AssertionError(op)

    def candidates(self, domain: Any, node: Any) -> list[tuple[list[Any], int, int]] | None:
        """Spans whose item names include every item that ``node`` matches, else None."""
        if isinstance(node, Predicate):
            if node.op == "in":
                return [
                    s
                    for v in node.operands
                    if (s := self.span(domain, Predicate(node.attribute, node.every, "=", (v,))))
                ]
            one = self.span(domain, node)
            return None if one is None else [one]
        if node.op in ("and", "intersection"):
            options = [c for p in node.parts if (c := self.candidates(domain, p)) is not None]
            if not options:
                return None
            return min(options, key=lambda spans: sum(max(0, hi - lo) for _, lo, hi in spans))
        if node.op == "or":
            union: list[tuple[list[Any], int, int]] = []
            for part in node.parts:
                spans = self.candidates(domain, part)
                if spans is None:
                    return None
                union += spans
            return union
        return None  # not


def _like_prefix(pattern: str) -> str:
    """The literal start of a like pattern (up to its first unescaped ``%``)."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "%":
            break
        out.append(next(chars, "\\") if char == "\\" else char)
    return "".join(out)


_INDEXES: weakref.WeakKeyDictionary[Any, DomainIndex] = weakref.WeakKeyDictionary()


def domain_index(domain: Any) -> DomainIndex:
    index = _INDEXES.get(domain)
    if index is None or len(index.order) != len(domain.items):
        index = _INDEXES[domain] = DomainIndex(domain)
    return index


def _check_expected(domain: Any, item_name: str, expected: dict[str, Any] | None) -> None:
    """Raise as SimpleDB does when the update condition ``expected`` does not hold."""
    if not expected:
        return
    name = expected.get("Name")
    if not name:
        raise MissingParameter("The request must contain the parameter Expected.Name.")
    exists = _as_bool(expected.get("Exists"), default=True)
    value = expected.get("Value")
    if not exists and value is not None:
        raise ExistsAndExpectedValue()
    if exists and value is None:
        raise IncompleteExpectedExpression()
    item = domain.items.get(item_name)
    current = _item_dict(item).get(name, []) if item is not None else []
    if not exists:
        if current:
            raise ConditionalCheckFailed(
                f"Conditional check failed. Attribute ({name}) value exists."
            )
        return
    if not current:
        raise AttributeDoesNotExist(f"Attribute ({name}) does not exist")
    if len(current) > 1:
        raise MultiValuedAttribute(
            f"Attribute ({name}) is multi-valued. Conditional check can only be performed on "
            "a single-valued attribute"
        )
    if current[0] != value:
        raise ConditionalCheckFailed(
            f"Conditional check failed. Attribute ({name}) value is ({current[0]}) "
            f"but was expected ({value})"
        )


def _validate_attributes(attributes: list[dict[str, Any]]) -> None:
    if len(attributes) > MAX_ATTRIBUTES_PER_CALL:
        raise NumberSubmittedAttributesExceeded()
    for attr in attributes:
        if not attr.get("Name"):
            raise MissingParameter("The request must contain the parameter Attribute.Name.")
        if attr.get("Value") is None:
            raise MissingParameter("The request must contain the parameter Attribute.Value.")
        for field in ("Name", "Value"):
            if len(str(attr[field]).encode()) > MAX_VALUE_BYTES:
                raise InvalidParameterValue(
                    f"Value ({str(attr[field])[:20]}...) for parameter {field} is invalid. "
                    f"Value exceeds maximum length of {MAX_VALUE_BYTES}."
                )


def _put(domain: Any, item_name: str, attributes: list[dict[str, Any]]) -> None:
    if not item_name:
        raise MissingParameter("The request must contain the parameter ItemName.")
    index = _INDEXES.get(domain)
    before = index.before(domain, item_name) if index is not None else None
    item = domain.items[item_name]  # defaultdict: creates the item
    for attr in attributes:
        if _as_bool(attr.get("Replace"), default=False):
            item.attributes = [a for a in item.attributes if a["Name"] != attr["Name"]]
    for attr in attributes:
        pair = {"Name": str(attr["Name"]), "Value": str(attr["Value"])}
        if pair not in item.attributes:
            item.attributes.append(pair)
    if index is not None:
        index.after(domain, item_name, before)


def _delete(domain: Any, item_name: str, attributes: list[dict[str, Any]] | None) -> None:
    item = domain.items.get(item_name)
    if item is None:
        return
    index = _INDEXES.get(domain)
    before = index.before(domain, item_name) if index is not None else None
    try:
        _delete_from(domain, item_name, item, attributes)
    finally:
        if index is not None:
            index.after(domain, item_name, before)


def _delete_from(
    domain: Any, item_name: str, item: Any, attributes: list[dict[str, Any]] | None
) -> None:
    if not attributes:
        del domain.items[item_name]
        return
    for attr in attributes:
        if attr.get("Value") is None:
            item.attributes = [a for a in item.attributes if a["Name"] != attr["Name"]]
        else:
            item.attributes = [
                a
                for a in item.attributes
                if not (a["Name"] == attr["Name"] and a["Value"] == attr["Value"])
            ]
    if not item.attributes:
        del domain.items[item_name]


def _token_for(expression: str, offset: int) -> str:
    digest = hashlib.sha256(expression.encode()).hexdigest()[:16]
    raw = json.dumps({"o": offset, "q": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _offset_from(expression: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
        digest = data["q"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidNextToken() from exc
    if digest != hashlib.sha256(expression.encode()).hexdigest()[:16] or offset < 0:
        raise InvalidNextToken()
    return offset


def _sort_key(values: list[str], descending: bool) -> str:
    return (max(values) if descending else min(values)) if values else ""


def _matching_rows(domain: Any, where: Any, use_index: bool) -> list[tuple[str, Any]]:
    """(name, attributes) of the items ``where`` matches, in the domain's order. Without a
    where-expression the attributes are the moto item (turned into a dict only for the page
    sent); with one, the index narrows the items tested to those it can match."""
    if where is None:
        return [(n, i) for n, i in list(domain.items.items()) if i.attributes]
    names: Any = None
    if use_index:
        index = domain_index(domain)
        spans = index.candidates(domain, where)
        if spans is not None:
            found = {name for pairs, lo, hi in spans for _, name in pairs[lo:hi]}
            names = sorted(found, key=index.order.__getitem__)
    if names is None:
        names = list(domain.items)
    rows = []
    for name in names:
        item = domain.items.get(name)
        attrs = _item_dict(item) if item is not None else None
        if attrs and matches(where, name, attrs):
            rows.append((name, attrs))
    return rows


def run_select(
    backend: Any, expression: str, next_token: str | None, *, use_index: bool = True
) -> dict[str, Any]:
    """Evaluate a select against ``backend``: {"Items": [...], "NextToken": ...}.

    ``use_index`` False scans every item (the reference the index is tested against)."""
    query = parse_select(expression)
    domain = backend._get_domain(query.domain)
    # a next token is bound to the domain, where and order by (not the output list or limit): the
    # tokens of count(*) and of select are interchangeable, as SimpleDB documents
    paging_key = repr((query.domain, query.where, query.order_by, query.descending))
    offset = _offset_from(paging_key, next_token)
    rows = _matching_rows(domain, query.where, use_index)
    if query.output == "count":
        left = max(0, len(rows) - offset)
        count = left if query.limit is None else min(query.limit, left)
        result: dict[str, Any] = {
            "Items": [{"Name": "Domain", "Attributes": [{"Name": "Count", "Value": str(count)}]}]
        }
        if offset + count < len(rows):
            result["NextToken"] = _token_for(paging_key, offset + count)
        return result
    limit = DEFAULT_LIMIT if query.limit is None else query.limit
    if query.order_by is not None:
        if query.order_by == "":
            rows.sort(key=lambda r: r[0], reverse=query.descending)
        else:
            attribute = query.order_by
            rows.sort(
                key=lambda r: _sort_key(r[1].get(attribute, []), query.descending),
                reverse=query.descending,
            )
    items: list[dict[str, Any]] = []
    size = 0
    position = offset
    for name, attrs in rows[offset : offset + limit]:
        if query.where is None:
            attrs = _item_dict(attrs)
        if query.output == "*":
            chosen = attrs
        elif query.output == "itemName":
            chosen = {}
        else:
            chosen = {k: v for k, v in attrs.items() if k in query.attributes}
        pairs = [{"Name": k, "Value": v} for k, vs in chosen.items() for v in vs]
        item_size = len(name.encode()) + sum(
            len(p["Name"].encode()) + len(p["Value"].encode()) for p in pairs
        )
        if items and size + item_size > MAX_PAGE_BYTES:
            break
        size += item_size
        items.append({"Name": name, "Attributes": pairs})
        position += 1
    result = {"Items": items}
    if position < len(rows):
        result["NextToken"] = _token_for(paging_key, position)
    return result


def domain_metadata(backend: Any, domain_name: str) -> dict[str, Any]:
    domain = backend._get_domain(domain_name)
    names: set[str] = set()
    item_names_bytes = attribute_values = attribute_values_bytes = 0
    for item_name, item in domain.items.items():
        if not item.attributes:
            continue
        item_names_bytes += len(item_name.encode())
        for attr in item.attributes:
            names.add(attr["Name"])
            attribute_values += 1
            attribute_values_bytes += len(attr["Value"].encode())
    return {
        "ItemCount": sum(1 for i in domain.items.values() if i.attributes),
        "ItemNamesSizeBytes": item_names_bytes,
        "AttributeNameCount": len(names),
        "AttributeNamesSizeBytes": sum(len(n.encode()) for n in names),
        "AttributeValueCount": attribute_values,
        "AttributeValuesSizeBytes": attribute_values_bytes,
        "Timestamp": int(time.time()),
    }


# ---- the Query API -------------------------------------------------------------------------------


def request_params(environ: dict[str, Any]) -> dict[str, str] | None:
    """The parameters of a SimpleDB Query request (GET query string and/or POST form), else None.

    SimpleDB is recognised by its API version, as AWS's endpoint would by its host name. The body
    of a form POST is read and put back, so that a request that is not SimpleDB's reaches moto whole.
    """
    query = environ.get("QUERY_STRING") or ""
    params: dict[str, str] = {}
    if API_VERSION in query:
        params.update(urllib.parse.parse_qsl(query, keep_blank_values=True))
    content_type = environ.get("CONTENT_TYPE") or ""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length and content_type.startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        if API_VERSION.encode() in body:
            params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    if params.get("Version") == API_VERSION and params.get("Action"):
        return params
    return None


def numbered(params: dict[str, str], prefix: str) -> list[dict[str, str]]:
    """``prefix.N.rest`` parameters grouped by N in numeric order (any start, gaps allowed).

    Older SDKs count from 0, botocore from 1; AWS takes any numbering. A parameter without a rest
    (``AttributeName.N``) is under the key "".
    """
    groups: dict[int, dict[str, str]] = {}
    head = prefix + "."
    for key, value in params.items():
        if not key.startswith(head):
            continue
        index, _, rest = key[len(head) :].partition(".")
        if index.isdigit():
            groups.setdefault(int(index), {})[rest] = value
    return [groups[i] for i in sorted(groups)]


def _expected(params: dict[str, str]) -> dict[str, str] | None:
    """The update condition: ``Expected.Name`` (botocore) or ``Expected.N.Name`` (the docs)."""
    plain = {
        k[len("Expected.") :]: v
        for k, v in params.items()
        if k.count(".") == 1 and k.startswith("Expected.")
    }
    if plain:
        return plain
    groups = numbered(params, "Expected")
    return groups[0] if groups else None


def _attributes(group: dict[str, str], *, need_value: bool) -> list[dict[str, Any]]:
    attributes = []
    for attr in numbered(group, "Attribute"):
        name = attr.get("Name")
        if name is None:
            raise MissingParameter("The request must contain the parameter Attribute.Name.")
        if need_value and attr.get("Value") is None:
            raise MissingParameter(f"Attribute.Value missing for Attribute.Name='{name}'.")
        one: dict[str, Any] = {"Name": name, "Value": attr.get("Value")}
        if "Replace" in attr:
            one["Replace"] = attr["Replace"]
        attributes.append(one)
    return attributes


def _backend() -> Any:
    from moto.sdb.models import sdb_backends

    return sdb_backends[ACCOUNT_ID][REGION]


_DOMAIN_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")


def _domain_name(params: dict[str, str]) -> str:
    name = params.get("DomainName")
    if name is None:
        raise MissingParameter("The request must contain the parameter DomainName.")
    if not _DOMAIN_NAME.match(name):
        raise InvalidParameterValue(f"Value ({name}) for parameter DomainName is invalid.")
    return name


def _domain(params: dict[str, str]) -> Any:
    name = _domain_name(params)
    domain = _backend().domains.get(name)
    if domain is None:
        raise NoSuchDomain()
    return domain


def _item_name(value: str | None, parameter: str = "ItemName") -> str:
    if not value:
        raise MissingParameter(f"The request must contain the parameter {parameter}.")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidParameterValue(
            f"Value ({value[:20]}...) for parameter {parameter} is invalid. "
            f"Value exceeds maximum length of {MAX_VALUE_BYTES}."
        )
    return value


def _batch_items(params: dict[str, str], *, need_value: bool) -> list[dict[str, Any]]:
    items = []
    seen: set[str] = set()
    groups = numbered(params, "Item")
    if len(groups) > MAX_BATCH_ITEMS:
        raise NumberSubmittedItemsExceeded()
    for group in groups:
        name = _item_name(group.get("ItemName"), "Item.ItemName")
        if name in seen:
            raise DuplicateItemName(f"Item {name} was specified more than once.")
        seen.add(name)
        items.append({"Name": name, "Attributes": _attributes(group, need_value=need_value)})
    return items


# ---- answers ---------------------------------------------------------------------------------------

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _text(tag: str, value: str) -> str:
    """``<tag>value</tag>``; base64 with encoding="base64" when XML 1.0 cannot carry the value."""
    if _XML_INVALID.search(value):
        encoded = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()
        return f'<{tag} encoding="base64">{encoded}</{tag}>'
    return f"<{tag}>{_escape(value)}</{tag}>"


def _attribute_xml(attributes: list[dict[str, Any]]) -> str:
    return "".join(
        f"<Attribute>{_text('Name', a['Name'])}{_text('Value', a['Value'])}</Attribute>"
        for a in attributes
    )


def _answer(action: str, result: str | None) -> bytes:
    inner = f"<{action}Result>{result}</{action}Result>" if result is not None else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{XMLNS}">{inner}'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
        f"<BoxUsage>{BOX_USAGE:.10f}</BoxUsage></ResponseMetadata></{action}Response>"
    ).encode()


def error_body(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{_escape(code)}</Code><Message>{_escape(message)}</Message>"
        f"<BoxUsage>{BOX_USAGE:.10f}</BoxUsage></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


# ---- the actions -----------------------------------------------------------------------------------


def _create_domain(params: dict[str, str]) -> str | None:
    from moto.sdb.models import FakeDomain

    name = _domain_name(params)
    backend = _backend()
    if name not in backend.domains:
        backend.domains[name] = FakeDomain(name=name)
    return None


def _delete_domain(params: dict[str, str]) -> str | None:
    _backend().domains.pop(_domain_name(params), None)
    return None


def _list_domains(params: dict[str, str]) -> str | None:
    raw = params.get("MaxNumberOfDomains")
    try:
        most = MAX_DOMAINS_PER_PAGE if raw is None else int(raw)
    except ValueError:
        most = 0
    if not 1 <= most <= MAX_DOMAINS_PER_PAGE:
        raise InvalidParameterValue(
            f"Value ({raw}) for parameter MaxNumberOfDomains is invalid. "
            f"MaxNumberOfDomains must be between 1 and {MAX_DOMAINS_PER_PAGE}."
        )
    names = sorted(_backend().domains)
    start = 0
    token = params.get("NextToken")
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except (ValueError, binascii.Error) as exc:
            raise InvalidNextToken() from exc
        start = next((i for i, n in enumerate(names) if n > after), len(names))
    page = names[start : start + most]
    out = "".join(_text("DomainName", n) for n in page)
    if start + most < len(names):
        out += f"<NextToken>{base64.urlsafe_b64encode(page[-1].encode()).decode()}</NextToken>"
    return out


def _domain_metadata(params: dict[str, str]) -> str | None:
    domain = _domain(params)
    data = domain_metadata(_backend(), domain.name)
    return "".join(f"<{k}>{v}</{k}>" for k, v in data.items())


def _put_attributes(params: dict[str, str]) -> str | None:
    domain = _domain(params)
    item_name = _item_name(params.get("ItemName"))
    attributes = _attributes(params, need_value=True)
    _validate_attributes(attributes)
    _check_expected(domain, item_name, _expected(params))
    _put(domain, item_name, attributes)
    return None


def _get_attributes(params: dict[str, str]) -> str | None:
    domain = _domain(params)
    item_name = _item_name(params.get("ItemName"))
    wanted = {g[""] for g in numbered(params, "AttributeName") if "" in g}
    item = domain.items.get(item_name)
    found = (
        [] if item is None else [a for a in item.attributes if not wanted or a["Name"] in wanted]
    )
    return _attribute_xml(found)


def _delete_attributes(params: dict[str, str]) -> str | None:
    domain = _domain(params)
    item_name = _item_name(params.get("ItemName"))
    attributes = _attributes(params, need_value=False)
    _check_expected(domain, item_name, _expected(params))
    _delete(domain, item_name, attributes or None)
    return None


def _batch_put_attributes(params: dict[str, str]) -> str | None:
    domain = _domain(params)
    items = _batch_items(params, need_value=True)
    for item in items:
        _validate_attributes(item["Attributes"])
    for item in items:
        _put(domain, item["Name"], item["Attributes"])
    return None


def _batch_delete_attributes(params: dict[str, str]) -> str | None:
    domain = _domain(params)
    for item in _batch_items(params, need_value=False):
        _delete(domain, item["Name"], item["Attributes"] or None)
    return None


def _select(params: dict[str, str]) -> str | None:
    expression = params.get("SelectExpression")
    if not expression:
        raise MissingParameter("The request must contain the parameter SelectExpression.")
    query = parse_select(expression)
    if query.domain not in _backend().domains:
        raise NoSuchDomain()
    result = run_select(_backend(), expression, params.get("NextToken"))
    out = "".join(
        f"<Item>{_text('Name', item['Name'])}{_attribute_xml(item['Attributes'])}</Item>"
        for item in result["Items"]
    )
    if result.get("NextToken"):
        out += f"<NextToken>{result['NextToken']}</NextToken>"
    return out


ACTIONS = {
    "CreateDomain": _create_domain,
    "DeleteDomain": _delete_domain,
    "ListDomains": _list_domains,
    "DomainMetadata": _domain_metadata,
    "PutAttributes": _put_attributes,
    "GetAttributes": _get_attributes,
    "DeleteAttributes": _delete_attributes,
    "BatchPutAttributes": _batch_put_attributes,
    "BatchDeleteAttributes": _batch_delete_attributes,
    "Select": _select,
}


def handle(params: dict[str, str]) -> tuple[int, bytes]:
    """Run one SimpleDB request (the caller holds the backend lock): (HTTP status, XML body)."""
    action = params.get("Action", "")
    run = ACTIONS.get(action)
    try:
        if run is None:
            raise InvalidAction(f"The action {action} is not valid for this web service.")
        return 200, _answer(action, run(params))
    except SimpleDBError as exc:
        return exc.status, error_body(exc.code, exc.message)
    except ServiceException as exc:  # moto's own (InvalidParameterValue, NoSuchDomain)
        return 400, error_body(exc.code, exc.message)
