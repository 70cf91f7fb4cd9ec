"""Check a JSON value the server sent against a schema of docs/openapi.yaml.

Strict where the document is specific: an object whose schema lists
`properties` (and no `additionalProperties`) may carry no other field, so a
field the server adds without documenting it fails, as does a documented
one of the wrong type, a missing `required` one, a value outside its
`enum`, `minimum` or `maximum`, or a date or date-time that is not one.
"""

import os
import re

import yaml

HERE = os.path.dirname(__file__)
_doc = None

DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def doc():
    global _doc
    if _doc is None:
        with open(os.path.join(HERE, "..", "..", "docs", "openapi.yaml")) as f:
            _doc = yaml.safe_load(f)
    return _doc


def schema(name):
    return doc()["components"]["schemas"][name]


def errors(value, sch, path="$"):
    """The list of mismatches (empty when the value matches), each naming its path."""
    out = []
    if "$ref" in sch:
        return errors(value, schema(sch["$ref"].rsplit("/", 1)[1]), path)
    if value is None:
        return [] if sch.get("nullable") or not sch.get("type") else ["%s: null, not nullable" % path]
    t = sch.get("type")
    if t in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (t == "integer" and not isinstance(value, int)):
            return ["%s: %r is not %s" % (path, value, t)]
        if "minimum" in sch and value < sch["minimum"]:
            out.append("%s: %r below %r" % (path, value, sch["minimum"]))
        if "maximum" in sch and value > sch["maximum"]:
            out.append("%s: %r above %r" % (path, value, sch["maximum"]))
    elif t and not isinstance(value, TYPES[t]):
        return ["%s: %r is not %s" % (path, value, t)]
    if "enum" in sch and value not in sch["enum"]:
        out.append("%s: %r not in %r" % (path, value, sch["enum"]))
    fmt = sch.get("format")
    if fmt == "date-time" and not DATE_TIME.match(value):
        out.append("%s: %r is not a date-time" % (path, value))
    if fmt == "date" and not DATE.match(value):
        out.append("%s: %r is not a date" % (path, value))
    if t == "array" and "items" in sch:
        for i, v in enumerate(value):
            out += errors(v, sch["items"], "%s[%d]" % (path, i))
    if t == "object":
        props = sch.get("properties", {})
        for k in sch.get("required", []):
            if k not in value:
                out.append("%s: required field %s missing" % (path, k))
        extra = sch.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                out += errors(v, props[k], "%s.%s" % (path, k))
            elif isinstance(extra, dict):
                out += errors(v, extra, "%s.%s" % (path, k))
            elif props and extra is None:
                out.append("%s: field %s is not in the schema" % (path, k))
    return out
