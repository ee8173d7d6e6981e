"""SimpleDB completed for the local cloud: select, conditional puts, deletes, batches, metadata.

moto 5.2.5 lacks these; ``install()`` patches its sdb backend and responses inside the server process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import ServiceException

DEFAULT_LIMIT = 100
MAX_LIMIT = 2500
MAX_PAGE_BYTES = 1024 * 1024
MAX_BATCH_ITEMS = 25
MAX_ATTRIBUTES_PER_CALL = 256
MAX_VALUE_BYTES = 1024
BOX_USAGE = 0.0000219907

_lock = threading.RLock()


# ---- errors (codes as SimpleDB documents them) --------------------------------------------------


class SimpleDBError(ServiceException):
    box_usage = BOX_USAGE


class InvalidQueryExpression(SimpleDBError):
    code = "InvalidQueryExpression"


class InvalidSortExpression(SimpleDBError):
    code = "InvalidSortExpression"


class InvalidNextToken(SimpleDBError):
    code = "InvalidNextToken"
    message = "The specified next token is not valid."


class ConditionalCheckFailed(SimpleDBError):
    code = "ConditionalCheckFailed"


class AttributeDoesNotExist(SimpleDBError):
    code = "AttributeDoesNotExist"


class MissingParameter(SimpleDBError):
    code = "MissingParameter"


class InvalidParameterValue(SimpleDBError):
    code = "InvalidParameterValue"


class NumberSubmittedItemsExceeded(SimpleDBError):
    code = "NumberSubmittedItemsExceeded"
    message = "Too many items in a single call. Up to 25 items per call allowed."


class NumberSubmittedAttributesExceeded(SimpleDBError):
    code = "NumberSubmittedAttributesExceeded"
    message = "Too many attributes for this item. Up to 256 attributes per call allowed."


class DuplicateItemName(SimpleDBError):
    code = "DuplicateItemName"


class MultiValuedAttribute(SimpleDBError):
    code = "MultiValuedAttribute"


# ---- the select language ------------------------------------------------------------------------

KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "like",
    "in",
    "between",
    "is",
    "null",
    "every",
    "order",
    "by",
    "asc",
    "desc",
    "limit",
    "intersection",
    "itemname",
    "count",
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
    op: str  # and, or, not
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    output: str  # "*", "itemName", "count", "attributes"
    attributes: tuple[str, ...]
    domain: str
    where: Any
    order_by: str | None  # attribute, or "" for itemName()
    descending: bool
    limit: int


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
        limit = DEFAULT_LIMIT
        if self.is_kw("limit"):
            self.i += 1
            token = self.expect("num")
            limit = int(token.text)
            if not 1 <= limit <= MAX_LIMIT:
                raise InvalidQueryExpression(
                    f"The limit {limit} is not valid: it must be between 1 and {MAX_LIMIT}."
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
        parts = [self.not_expr()]
        while self.is_kw("and") or self.is_kw("intersection"):
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
    parts = [re.escape(p) for p in pattern.split("%")]
    return re.compile("^" + ".*".join(parts) + "$", re.DOTALL)


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


def matches(node: Any, name: str, attributes: dict[str, list[str]]) -> bool:
    """Whether the item ``name`` with ``attributes`` satisfies the where-expression ``node``."""
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.op == "and":
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


def _check_expected(domain: Any, item_name: str, expected: dict[str, Any] | None) -> None:
    if not expected or not expected.get("Name"):
        return
    name = expected["Name"]
    exists = _as_bool(expected.get("Exists"), default=True)
    value = expected.get("Value")
    item = domain.items.get(item_name)
    current = _item_dict(item).get(name, []) if item is not None else []
    if not exists:
        if value is not None:
            raise InvalidParameterValue("Value and Exists=false cannot be used together.")
        if current:
            raise ConditionalCheckFailed(
                f"Conditional check failed. Attribute ({name}) value exists."
            )
        return
    if value is None:
        raise MissingParameter("The request must contain the parameter Expected.Value.")
    if not current:
        raise AttributeDoesNotExist(f"Attribute ({name}) does not exist")
    if len(current) > 1:
        raise MultiValuedAttribute(f"Attribute ({name}) is multi-valued.")
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
    item = domain.items[item_name]  # defaultdict: creates the item
    for attr in attributes:
        if _as_bool(attr.get("Replace"), default=False):
            item.attributes = [a for a in item.attributes if a["Name"] != attr["Name"]]
    for attr in attributes:
        pair = {"Name": str(attr["Name"]), "Value": str(attr["Value"])}
        if pair not in item.attributes:
            item.attributes.append(pair)


def _delete(domain: Any, item_name: str, attributes: list[dict[str, Any]] | None) -> None:
    item = domain.items.get(item_name)
    if item is None:
        return
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


def run_select(backend: Any, expression: str, next_token: str | None) -> dict[str, Any]:
    """Evaluate a select against ``backend``: {"Items": [...], "NextToken": ...}."""
    query = parse_select(expression)
    domain = backend._get_domain(query.domain)
    offset = _offset_from(expression, next_token)
    rows = [
        (name, attrs)
        for name, attrs in ((n, _item_dict(i)) for n, i in list(domain.items.items()))
        if attrs and matches(query.where, name, attrs)
    ]
    if query.output == "count":
        count = len(rows)
        return {
            "Items": [{"Name": "Domain", "Attributes": [{"Name": "Count", "Value": str(count)}]}]
        }
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
    for name, attrs in rows[offset:]:
        if len(items) >= query.limit:
            break
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
    result: dict[str, Any] = {"Items": items}
    if position < len(rows):
        result["NextToken"] = _token_for(expression, position)
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


# ---- installing the patches ----------------------------------------------------------------------


def install() -> None:
    """Patch moto's SimpleDB backend and responses in this process."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sdb.models import FakeDomain, SimpleDBBackend
    from moto.sdb.responses import SimpleDBResponse

    def create_domain(self: Any, domain_name: str) -> None:
        self._validate_domain_name(domain_name)
        with _lock:
            if domain_name not in self.domains:
                self.domains[domain_name] = FakeDomain(name=domain_name)

    def get_attributes(
        self: Any, domain_name: str, item_name: str, attribute_names: list[str] | None
    ) -> list[dict[str, Any]]:
        self._validate_domain_name(domain_name)
        with _lock:
            domain = self._get_domain(domain_name)
            item = domain.items.get(item_name)
            if item is None:
                return []
            return [
                a for a in item.attributes if not attribute_names or a["Name"] in attribute_names
            ]

    def put_attributes(
        self: Any,
        domain_name: str,
        item_name: str,
        attributes: list[dict[str, Any]],
        expected: dict[str, Any] | None = None,
    ) -> None:
        self._validate_domain_name(domain_name)
        attributes = attributes or []
        _validate_attributes(attributes)
        with _lock:
            domain = self._get_domain(domain_name)
            _check_expected(domain, item_name, expected)
            _put(domain, item_name, attributes)

    def delete_attributes(
        self: Any,
        domain_name: str,
        item_name: str,
        attributes: list[dict[str, Any]] | None,
        expected: dict[str, Any] | None = None,
    ) -> None:
        self._validate_domain_name(domain_name)
        with _lock:
            domain = self._get_domain(domain_name)
            _check_expected(domain, item_name, expected)
            _delete(domain, item_name, attributes)

    def _batch(items: list[dict[str, Any]]) -> None:
        if len(items) > MAX_BATCH_ITEMS:
            raise NumberSubmittedItemsExceeded()
        seen: set[str] = set()
        for item in items:
            if not item.get("Name"):
                raise MissingParameter("The request must contain the parameter ItemName.")
            if item["Name"] in seen:
                raise DuplicateItemName(f"Item {item['Name']} was specified more than once.")
            seen.add(item["Name"])

    def batch_put_attributes(self: Any, domain_name: str, items: list[dict[str, Any]]) -> None:
        self._validate_domain_name(domain_name)
        items = items or []
        _batch(items)
        for item in items:
            _validate_attributes(item.get("Attributes") or [])
        with _lock:
            domain = self._get_domain(domain_name)
            for item in items:
                _put(domain, item["Name"], item.get("Attributes") or [])

    def batch_delete_attributes(self: Any, domain_name: str, items: list[dict[str, Any]]) -> None:
        self._validate_domain_name(domain_name)
        items = items or []
        _batch(items)
        with _lock:
            domain = self._get_domain(domain_name)
            for item in items:
                _delete(domain, item["Name"], item.get("Attributes"))

    def select(self: Any, expression: str, next_token: str | None) -> dict[str, Any]:
        with _lock:
            return run_select(self, expression, next_token)

    def metadata(self: Any, domain_name: str) -> dict[str, Any]:
        self._validate_domain_name(domain_name)
        with _lock:
            return domain_metadata(self, domain_name)

    patches: dict[str, Callable[..., Any]] = {
        "create_domain": create_domain,
        "get_attributes": get_attributes,
        "put_attributes": put_attributes,
        "delete_attributes": delete_attributes,
        "batch_put_attributes": batch_put_attributes,
        "batch_delete_attributes": batch_delete_attributes,
        "select": select,
        "domain_metadata": metadata,
    }
    for name, function in patches.items():
        setattr(SimpleDBBackend, name, function)

    def r_put_attributes(self: Any) -> Any:
        self.sdb_backend.put_attributes(
            domain_name=self._get_param("DomainName"),
            item_name=self._get_param("ItemName"),
            attributes=self._get_param("Attributes"),
            expected=self._get_param("Expected"),
        )
        return EmptyResult()

    def r_delete_attributes(self: Any) -> Any:
        self.sdb_backend.delete_attributes(
            domain_name=self._get_param("DomainName"),
            item_name=self._get_param("ItemName"),
            attributes=self._get_param("Attributes"),
            expected=self._get_param("Expected"),
        )
        return EmptyResult()

    def r_batch_put_attributes(self: Any) -> Any:
        self.sdb_backend.batch_put_attributes(
            domain_name=self._get_param("DomainName"), items=self._get_param("Items")
        )
        return EmptyResult()

    def r_batch_delete_attributes(self: Any) -> Any:
        self.sdb_backend.batch_delete_attributes(
            domain_name=self._get_param("DomainName"), items=self._get_param("Items")
        )
        return EmptyResult()

    def r_select(self: Any) -> Any:
        expression = self._get_param("SelectExpression")
        if not expression:
            raise MissingParameter("The request must contain the parameter SelectExpression.")
        return ActionResult(self.sdb_backend.select(expression, self._get_param("NextToken")))

    def r_domain_metadata(self: Any) -> Any:
        return ActionResult(self.sdb_backend.domain_metadata(self._get_param("DomainName")))

    responses: dict[str, Callable[..., Any]] = {
        "put_attributes": r_put_attributes,
        "delete_attributes": r_delete_attributes,
        "batch_put_attributes": r_batch_put_attributes,
        "batch_delete_attributes": r_batch_delete_attributes,
        "select": r_select,
        "domain_metadata": r_domain_metadata,
    }
    for name, function in responses.items():
        setattr(SimpleDBResponse, name, function)
