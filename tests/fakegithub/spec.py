"""GitHub's OpenAPI description (rest-api-subset.json) as a request validator for the fake GitHub.

The fake refuses what GitHub would refuse: an unknown path or method, a bad path or query parameter, a body that
does not satisfy the operation's JSON schema. OpenAPI 3.0 schemas are not quite JSON Schema, so `nullable` is
rewritten into a type union before jsonschema sees them; `$ref`s resolve against the whole document.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker


def shared_github_dir() -> Path:
    """../shared/github, found by walking up from here (main or any worktree); else the copy kept in
    tests/data/github, so a checkout without the shared folder beside it tests against the same material."""
    env = os.environ.get("DETBOT_SHARED_GITHUB")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "github"
        if (candidate / "rest-api-subset.json").is_file():
            return candidate
    vendored = Path(__file__).resolve().parent.parent / "data" / "github"
    if (vendored / "rest-api-subset.json").is_file():
        return vendored
    raise FileNotFoundError("shared/github/rest-api-subset.json not found above " + str(Path(__file__).parent))


def _openapi_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k not in ("example", "examples")}
    if out.pop("nullable", False):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types + ["null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
        if "$ref" in out or "allOf" in out or "oneOf" in out or "anyOf" in out:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


_FORMATS = FormatChecker(formats=())
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@_FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    # GitHub wants ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`; rfc3339-validator is not installed, so check it here.
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    raw: dict
    regex: re.Pattern
    params: dict[tuple[str, str], dict] = field(default_factory=dict)  # (in, name) -> parameter
    body_pointer: str | None = None
    body_required: bool = False
    doc_url: str = "https://docs.github.com/rest"


class Spec:
    def __init__(self, document: dict) -> None:
        self.document = document
        self.converted = _openapi_to_jsonschema(document)
        self.operations: list[Operation] = []
        for template, item in document["paths"].items():
            for method, op in item.items():
                if method not in ("get", "post", "patch", "put", "delete"):
                    continue
                self.operations.append(self._operation(method.upper(), template, op))
        self._validators: dict[str, Draft202012Validator] = {}

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _operation(self, method: str, template: str, op: dict) -> Operation:
        params = {}
        for p in op.get("parameters", []):
            p = self._resolve(p)
            params[(p["in"], p["name"])] = p
        pattern = "^"
        for piece in re.split(r"(\{[^}]+\})", template):
            if piece.startswith("{"):
                name = piece[1:-1]
                multi = params.get(("path", name), {}).get("x-multi-segment")
                pattern += f"(?P<{name}>.+)" if multi else f"(?P<{name}>[^/]+)"
            else:
                pattern += re.escape(piece)
        pattern += "$"
        body_pointer = None
        body_required = False
        if "requestBody" in op:
            body_pointer = (f"#/paths/{template.replace('~', '~0').replace('/', '~1')}/{method.lower()}"
                            "/requestBody/content/application~1json/schema")
            body_required = bool(op["requestBody"].get("required"))
        doc = op.get("externalDocs", {}).get("url", "https://docs.github.com/rest")
        return Operation(method, template, op.get("operationId", ""), op, re.compile(pattern), params,
                         body_pointer, body_required, doc)

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation for `method path`, preferring the template with most literal characters."""
        best = None
        for op in self.operations:
            if op.method != method:
                continue
            m = op.regex.match(path)
            if m:
                literal = len(re.sub(r"\{[^}]+\}", "", op.template))
                if best is None or literal > best[2]:
                    best = (op, m.groupdict(), literal)
        return (best[0], best[1]) if best else None

    def path_exists(self, path: str) -> bool:
        return any(op.regex.match(path) for op in self.operations)

    def body_validator(self, op: Operation) -> Draft202012Validator:
        v = self._validators.get(op.body_pointer or "")
        if v is None:
            # The root carries the whole converted document so `#/components/...` refs resolve; other keys are
            # unknown keywords to jsonschema and ignored.
            root = dict(self.converted)
            root["$ref"] = op.body_pointer
            v = Draft202012Validator(root, format_checker=_FORMATS)
            self._validators[op.body_pointer or ""] = v
        return v

    def validate_params(self, op: Operation, path_params: dict[str, str],
                        query: dict[str, list[str]]) -> list[str]:
        errors = []
        for (where, name), p in op.params.items():
            if where == "query" and name not in query and p.get("required"):
                errors.append(f"query parameter {name!r} is required")
        for name, value in path_params.items():
            p = op.params.get(("path", name))
            if p is None:
                errors.append(f"path parameter {name!r} is not described")
                continue
            err = _check_scalar(value, p.get("schema", {}))
            if err:
                errors.append(f"path parameter {name}={value!r}: {err}")
        for name, values in query.items():
            p = op.params.get(("query", name))
            if p is None:
                errors.append(f"query parameter {name!r} is not accepted by {op.method} {op.template}")
                continue
            for value in values:
                err = _check_scalar(value, p.get("schema", {}))
                if err:
                    errors.append(f"query parameter {name}={value!r}: {err}")
        return errors

    def validate_body(self, op: Operation, body: Any) -> list[str]:
        validator = self.body_validator(op)
        out = []
        for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in err.absolute_path) or "(body)"
            out.append(f"{where}: {_describe(err)}")
        return out


def _describe(err: jsonschema.ValidationError) -> str:
    """jsonschema's message without a repr of a huge instance."""
    if err.validator == "maxItems":
        return f"has {len(err.instance)} items; at most {err.validator_value} are allowed (is too long)"
    if err.validator == "maxLength":
        return f"is {len(err.instance)} characters long; at most {err.validator_value} (is too long)"
    text = repr(err.instance)
    if len(text) > 120:
        return err.message.replace(text, reprlib.repr(err.instance))
    return err.message


def _check_scalar(value: str, schema: dict) -> str | None:
    kind = schema.get("type")
    parsed: Any = value
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            return "not an integer"
        parsed = int(value)
    elif kind == "boolean":
        if value not in ("true", "false"):
            return "not a boolean"
        parsed = value == "true"
    if "enum" in schema and parsed not in schema["enum"]:
        return f"not one of {schema['enum']}"
    if "format" in schema and schema["format"] == "date-time" and not _DATE_TIME.match(value):
        return "not an ISO 8601 date-time"
    return None


@functools.cache
def load_spec() -> Spec:
    path = shared_github_dir() / "rest-api-subset.json"
    return Spec(json.loads(path.read_text()))


@functools.cache
def _examples() -> dict:
    return load_spec().document["components"]["examples"]


def example(name: str) -> Any:
    """A fresh copy of one of the spec's response examples: the fake's responses start from GitHub's own."""
    return copy.deepcopy(_examples()[name]["value"])


def response_schema_validator(op: Operation, status: int) -> Draft202012Validator | None:
    """Validator for the documented response body of `op` at `status` (used to test the fake's fidelity)."""
    spec = load_spec()
    responses = op.raw.get("responses", {})
    if str(status) not in responses:
        return None
    resp = spec._resolve(responses[str(status)])
    if "application/json" not in resp.get("content", {}):
        return None
    ref = resp.get("$ref")
    del ref
    pointer = None
    for code, r in responses.items():
        if code == str(status):
            if "$ref" in r:
                pointer = r["$ref"] + "/content/application~1json/schema"
            else:
                pointer = (f"#/paths/{op.template.replace('~', '~0').replace('/', '~1')}/{op.method.lower()}"
                           f"/responses/{code}/content/application~1json/schema")
    root = dict(spec.converted)
    root["$ref"] = pointer
    return Draft202012Validator(root, format_checker=_FORMATS)


__all__ = ["Spec", "Operation", "load_spec", "example", "shared_github_dir", "response_schema_validator",
           "jsonschema"]
