"""A safe subset of Painless for processor `if` conditions, parsed into a small tree and interpreted.

Nothing is evaluated by Python: the grammar is

    expr    := or
    or      := and ('||' and)*
    and     := compare ('&&' compare)*
    compare := unary (('==' | '!=' | '<' | '<=' | '>' | '>=') unary)?
    unary   := '!'* postfix
    postfix := primary ( ('.' | '?.') NAME | ('.' | '?.') METHOD '(' args ')' | '[' STRING ']' )*
    primary := 'ctx' | STRING | NUMBER | 'true' | 'false' | 'null' | '(' expr ')'

METHOD is one of contains, containsKey, startsWith, endsWith, equals, equalsIgnoreCase, toLowerCase,
toUpperCase, trim, isEmpty, length, size. Reading through `.` from null fails the processor (Painless raises a
null pointer exception); `?.` yields null instead. Anything else is a load-time error naming what was found.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import regex

from .document import ProcessorError

METHODS = {"contains", "containsKey", "startsWith", "endsWith", "equals", "equalsIgnoreCase",
           "toLowerCase", "toUpperCase", "trim", "isEmpty", "length", "size"}
MAX_LENGTH = 4096
MAX_NESTING = 32

_TOKEN = regex.compile(r"""
    \s*(?:
      (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<op>\?\.|==|!=|<=|>=|&&|\|\||[!<>().\[\],])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""", regex.VERBOSE)


class ConditionError(ValueError):
    pass


Node = Callable[[dict[str, Any]], Any]


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _unquote(s: str) -> str:
    body = s[1:-1]
    return regex.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), body)


def _tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(src):
        if src[pos:].strip() == "":
            break
        m = _TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"unsupported syntax at character {pos + 1}: {src[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        toks.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    toks.append(_Tok("end", "", len(src)))
    return toks


def _npe(what: str) -> ProcessorError:
    return ProcessorError(f"cannot access [{what}] on null (use ?. for a null-safe read)")


def _num(v: Any, op: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProcessorError(f"cannot apply [{op}] to a value of type [{type(v).__name__}]")
    return v


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return a == b
    return type(a) is type(b) and a == b


def _call(target: Any, method: str, args: list[Any]) -> Any:
    arity = 1 if method in ("contains", "containsKey", "startsWith", "endsWith", "equals", "equalsIgnoreCase") \
        else 0
    if len(args) != arity:
        raise ProcessorError(f"{method}() takes {arity} argument(s), got {len(args)}")
    if method == "equals":
        return _equal(target, args[0])
    if isinstance(target, str):
        if method in ("contains", "startsWith", "endsWith", "equalsIgnoreCase") and not isinstance(args[0], str):
            raise ProcessorError(f"{method}() needs a string argument")
        if method == "contains":
            return args[0] in target
        if method == "startsWith":
            return target.startswith(args[0])
        if method == "endsWith":
            return target.endswith(args[0])
        if method == "equalsIgnoreCase":
            return target.lower() == args[0].lower()
        if method == "toLowerCase":
            return target.lower()
        if method == "toUpperCase":
            return target.upper()
        if method == "trim":
            return target.strip()
        if method == "isEmpty":
            return target == ""
        if method == "length":
            return len(target)
    if isinstance(target, list):
        if method == "contains":
            return any(_equal(x, args[0]) for x in target)
        if method == "isEmpty":
            return not target
        if method == "size":
            return len(target)
    if isinstance(target, dict):
        if method == "containsKey":
            return args[0] in target
        if method == "isEmpty":
            return not target
        if method == "size":
            return len(target)
    raise ProcessorError(f"method [{method}] is not defined for a value of type [{type(target).__name__}]")


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = _tokenize(src)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.toks[self.i]
        if text is not None and tok.text != text:
            raise ConditionError(f"expected {text!r} at character {tok.pos + 1}, found {tok.text or 'end'!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise ConditionError(f"unsupported syntax at character {tok.pos + 1}: {tok.text!r}")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek().text == "||":
            self.take()
            left, right = node, self.and_()
            node = (lambda l, r: lambda ctx: _bool(l(ctx), "||") or _bool(r(ctx), "||"))(left, right)
        return node

    def and_(self) -> Node:
        node = self.compare()
        while self.peek().text == "&&":
            self.take()
            left, right = node, self.compare()
            node = (lambda l, r: lambda ctx: _bool(l(ctx), "&&") and _bool(r(ctx), "&&"))(left, right)
        return node

    def unary(self) -> Node:
        negations = 0
        while self.peek().text == "!":
            self.take()
            negations += 1
        inner = self.postfix()
        if negations:
            odd = negations % 2 == 1
            return lambda ctx: _bool(inner(ctx), "!") != odd
        return inner

    def compare(self) -> Node:
        left = self.unary()
        op = self.peek().text
        if op not in ("==", "!=", "<", "<=", ">", ">="):
            return left
        self.take()
        right = self.unary()
        if op == "==":
            return lambda ctx: _equal(left(ctx), right(ctx))
        if op == "!=":
            return lambda ctx: not _equal(left(ctx), right(ctx))
        cmp = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}[op]
        return lambda ctx: cmp(float(_num(left(ctx), op)), float(_num(right(ctx), op)))

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok.text in (".", "?."):
                self.take()
                safe = tok.text == "?."
                name = self.take()
                if name.kind != "name":
                    raise ConditionError(f"expected a name after {tok.text!r} at character {name.pos + 1}")
                if self.peek().text == "(":
                    if name.text not in METHODS:
                        raise ConditionError(f"method [{name.text}] is not supported in conditions "
                                             f"(supported: {', '.join(sorted(METHODS))})")
                    self.take("(")
                    args: list[Node] = []
                    while self.peek().text != ")":
                        args.append(self.or_())
                        if self.peek().text == ",":
                            self.take()
                    self.take(")")
                    node = _method(node, name.text, args, safe)
                else:
                    node = _field(node, name.text, safe)
            elif tok.text == "[":
                self.take()
                key = self.take()
                if key.kind != "str":
                    raise ConditionError(f"only string keys are supported in [...] at character {key.pos + 1}")
                self.take("]")
                node = _field(node, _unquote(key.text), False)
            else:
                return node

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "str":
            value: Any = _unquote(tok.text)
            return lambda ctx: value
        if tok.kind == "num":
            num: Any = float(tok.text) if "." in tok.text else int(tok.text)
            return lambda ctx: num
        if tok.kind == "name":
            if tok.text == "ctx":
                return lambda ctx: ctx
            if tok.text in ("true", "false"):
                b = tok.text == "true"
                return lambda ctx: b
            if tok.text == "null":
                return lambda ctx: None
            raise ConditionError(f"unsupported name [{tok.text}] at character {tok.pos + 1} "
                                 f"(only ctx, literals, true, false and null)")
        if tok.text == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise ConditionError(f"parentheses nest deeper than {MAX_NESTING} levels")
            node = self.or_()
            self.take(")")
            self.depth -= 1
            return node
        raise ConditionError(f"unsupported syntax at character {tok.pos + 1}: {tok.text or 'end'!r}")


def _bool(v: Any, op: str) -> bool:
    if not isinstance(v, bool):
        raise ProcessorError(f"cannot apply [{op}] to a non-boolean value of type [{type(v).__name__}]")
    return v


def _field(target: Node, name: str, safe: bool) -> Node:
    def get(ctx: dict[str, Any]) -> Any:
        obj = target(ctx)
        if obj is None:
            if safe:
                return None
            raise _npe(name)
        if isinstance(obj, dict):
            return obj.get(name)
        if isinstance(obj, list) and name.isdigit():
            i = int(name)
            return obj[i] if i < len(obj) else None
        raise ProcessorError(f"cannot read field [{name}] of a value of type [{type(obj).__name__}]")
    return get


def _method(target: Node, name: str, args: list[Node], safe: bool) -> Node:
    def call(ctx: dict[str, Any]) -> Any:
        obj = target(ctx)
        if obj is None:
            if safe:
                return None
            raise _npe(name + "()")
        return _call(obj, name, [a(ctx) for a in args])
    return call


class Condition:
    def __init__(self, source: str):
        if not isinstance(source, str):
            raise ConditionError("`if` must be a string")
        if len(source) > MAX_LENGTH:
            raise ConditionError(f"`if` is longer than {MAX_LENGTH} characters")
        self.source = source
        self._node = _Parser(source).parse()

    def __call__(self, ctx: dict[str, Any]) -> bool:
        v = self._node(ctx)
        if not isinstance(v, bool):
            raise ProcessorError(f"condition [{self.source}] must return a boolean, got "
                                 f"[{'null' if v is None else type(v).__name__}]")
        return v
