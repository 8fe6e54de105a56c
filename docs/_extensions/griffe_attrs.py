"""A griffe extension that gives attrs classes (and plain exceptions) a signature in the docs.

attrs writes `__init__` when the class is created, so griffe's static analysis sees no
constructor and mkdocstrings shows an attrs class (configs, policies, models, results)
with no signature. This extension imports each attrs class, reads `attrs.fields()` (order,
`init=False`, `kw_only`, the parameter name of a private field) and builds the `__init__`
that attrs made, with the annotations as written in the source (so that they link) and
each default as written (`2.0`, `()`, `list()` for a factory). The fields themselves keep
their annotation and show that default as their value instead of the `attrs.field(...)`
call. An attribute set from a parameter in `__init__` shows that parameter's type (rather
than `poll = poll`). An exception class that keeps `Exception.__init__` (not
visible to static analysis) gets its `(*args)`.

Loaded by `mkdocs.yml` (`extensions: [tools/griffe_attrs.py]`).
"""

from __future__ import annotations

import ast
import importlib
from typing import Any

import attrs
import griffe

__all__ = ["AttrsExtension"]

_DECORATORS = {
    "attrs.frozen",
    "attrs.define",
    "attrs.mutable",
    "attr.s",
    "attr.attrs",
    "attr.frozen",
    "attr.define",
    "attr.mutable",
}
_FIELD_CALLS = {"attrs.field", "attr.ib", "attr.attrib", "attr.field"}
_FACTORY_CALLS = {"attrs.Factory", "attr.Factory"}


def _is_attrs(cls: griffe.Class) -> bool:
    for decorator in cls.decorators:
        value = decorator.value
        if isinstance(value, griffe.ExprCall):
            value = value.function
        path = value.canonical_path if isinstance(value, griffe.Expr) else str(value)
        if path in _DECORATORS:
            return True
    return False


def _keywords(call: griffe.ExprCall) -> dict[str, str | griffe.Expr]:
    return {arg.name: arg.value for arg in call.arguments if isinstance(arg, griffe.ExprKeyword)}


def _default(attribute: griffe.Attribute | None, field: Any) -> str | griffe.Expr | None:
    """The default of `field`: a literal as Python writes it, a factory as written, or None."""
    default = field.default
    if default is attrs.NOTHING:
        return None
    value = attribute.value if attribute is not None else None
    given = (
        _keywords(value)
        if isinstance(value, griffe.ExprCall) and value.canonical_path in _FIELD_CALLS
        else {}
    )
    factory = getattr(default, "factory", None)
    if factory is not None:  # attrs.Factory(x) or field(factory=x)
        if "factory" in given:
            return f"{given['factory']}()"
        if isinstance(value, griffe.ExprCall) and value.canonical_path in _FACTORY_CALLS:
            return f"{value.arguments[0]}()"
        return f"{getattr(factory, '__name__', 'factory')}()"
    text = repr(default)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    else:
        return text
    if "default" in given:
        return given["default"]
    if isinstance(value, griffe.Expr) and not isinstance(value, griffe.ExprCall):
        return value  # a name such as JobState.QUEUED, as written
    return text


def _runtime_class(cls: griffe.Class) -> type | None:
    try:
        module = importlib.import_module(cls.module.path)
    except ImportError:
        return None
    found = getattr(module, cls.name, None)
    return found if isinstance(found, type) else None


def _add_exception_init(cls: griffe.Class) -> None:
    """An exception that keeps `Exception.__init__` is built from its message (`*args`)."""
    args = griffe.Parameter("args", annotation="object", kind=griffe.ParameterKind.var_positional)
    self = griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)
    cls.set_member(
        "__init__",
        griffe.Function(
            "__init__",
            lineno=cls.lineno,
            endlineno=cls.lineno,
            parent=cls,
            parameters=griffe.Parameters(self, args),
            returns="None",
        ),
    )


def _attribute(cls: griffe.Class, name: str) -> griffe.Attribute | None:
    for owner in (cls, *cls.mro()):
        member = owner.members.get(name)
        if isinstance(member, griffe.Attribute):
            return member
    return None


def _add_init(cls: griffe.Class) -> None:
    runtime = _runtime_class(cls)
    if runtime is None or not attrs.has(runtime):
        return
    parameters: list[griffe.Parameter] = []
    for field in attrs.fields(runtime):
        attribute = _attribute(cls, field.name)
        default = _default(attribute, field)
        if attribute is not None and attribute.parent is cls and field.name in cls.members:
            attribute.value = default
            attribute.labels.discard("class-attribute")
        if not field.init:
            continue
        annotation: str | griffe.Expr | None = (
            attribute.annotation if attribute is not None else None
        ) or (field.type if isinstance(field.type, str) else None)
        kind = (
            griffe.ParameterKind.keyword_only
            if field.kw_only
            else griffe.ParameterKind.positional_or_keyword
        )
        parameters.append(
            griffe.Parameter(
                getattr(field, "alias", None) or field.name.lstrip("_"),
                annotation=annotation,
                kind=kind,
                default=default,
            )
        )
    parameters.sort(key=lambda p: p.kind is griffe.ParameterKind.keyword_only)  # as attrs does
    parameters.insert(0, griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword))
    init = griffe.Function(
        "__init__",
        lineno=cls.lineno,
        endlineno=cls.lineno,
        parent=cls,
        parameters=griffe.Parameters(*parameters),
        returns="None",
    )
    cls.set_member("__init__", init)
    cls.labels.add("attrs")


def _type_from_parameters(cls: griffe.Class) -> None:
    """`self.poll = poll` in `__init__` shows as `poll = poll`: show `poll: <its type>`."""
    init = cls.members.get("__init__")
    if not isinstance(init, griffe.Function):
        return
    parameters = {parameter.name: parameter for parameter in init.parameters}
    for member in cls.members.values():
        if (
            isinstance(member, griffe.Attribute)
            and "instance-attribute" in member.labels
            and isinstance(member.value, griffe.ExprName)
            and member.value.name in parameters
        ):
            if member.annotation is None:
                member.annotation = parameters[member.value.name].annotation
            member.value = None


def _walk(obj: griffe.Module | griffe.Class, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if isinstance(obj, griffe.Class) and "__init__" not in obj.members:
        if _is_attrs(obj):
            _add_init(obj)
        elif "__init__" not in obj.all_members:
            runtime = _runtime_class(obj)
            if runtime is not None and issubclass(runtime, BaseException):
                _add_exception_init(obj)
    if isinstance(obj, griffe.Class):
        _type_from_parameters(obj)
    for member in list(obj.members.values()):
        if not member.is_alias and isinstance(member, griffe.Module | griffe.Class):
            _walk(member, seen)


class AttrsExtension(griffe.Extension):
    """Build the `__init__` of every attrs class and plain exception of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Walk the package once it is loaded."""
        _walk(pkg, set())
