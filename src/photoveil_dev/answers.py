"""What each route of the API function can answer, read from the source, so the drift tests compare it
with openapi.yaml operation by operation (tests/contract/test_document.py).

An answer is the (status, code) of a RequestError: ``bad_request("code", ...)`` is a 400, and a call whose
first argument is ``HTTPStatus.X`` (4xx or 5xx) and second a code (a string, or a module-level constant)
says both: ``RequestError(...)``, the handler's ``_error(...)``, a subclass's ``super().__init__(...)``.

A route reaches what its handler (``@app.get("/jobs/<job_id>")`` in photoveil.handlers.api) names, and on,
through every function and class it names that the handler module or photoveil.service defines: a name
in the module, an imported one, ``module.f``, ``Class.f``, and a method's ``self.f``. A name is followed
whether it is called or passed on, and a class stands for all its methods, so the reader errs on the side
of more answers, never fewer; what it cannot follow (a method of an object it cannot name, such as
``deps.jobs.get``) is in the adapters, which raise no RequestError. ``@app.exception_handler`` functions
answer for every route; ``@app.not_found`` for none (API Gateway routes only the template's routes).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
HANDLER = "photoveil.handlers.api"

Answer = tuple[HTTPStatus, str]
Key = tuple[str, str]  # (module, "function" or "Class.method")
Route = tuple[str, str]  # ("POST", "/jobs/{}/regions"): a path parameter's name is the handler's own


@dataclass
class Module:
    name: str
    tree: ast.Module
    constants: dict[str, str] = field(default_factory=dict)  # NAME = "text"
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # local -> (module, name)
    classes: dict[str, list[str]] = field(default_factory=dict)  # class -> its methods


def answering_modules(src: Path = SRC) -> dict[str, Path]:
    """The API function's handler module and the service's, by dotted name."""
    paths = [src / "photoveil" / "handlers" / "api.py", *sorted((src / "photoveil" / "service").glob("*.py"))]
    return {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p for p in paths}


class Source:
    """The answering modules' syntax trees, and the functions each one reaches."""

    def __init__(self, src: Path = SRC) -> None:
        self.modules = {name: _read(name, path) for name, path in answering_modules(src).items()}
        for module in self.modules.values():
            # `from photoveil.service import status as status_view` names a module, not a member of one.
            for local, (source, imported) in list(module.imports.items()):
                if f"{source}.{imported}" in self.modules:
                    module.imports[local] = (f"{source}.{imported}", None)
        self.functions: dict[Key, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for module in self.modules.values():
            for node in module.tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions[(module.name, node.name)] = node
                elif isinstance(node, ast.ClassDef):
                    methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
                    module.classes[node.name] = [m.name for m in methods]
                    self.functions.update({(module.name, f"{node.name}.{m.name}"): m for m in methods})

    def answers(self, key: Key) -> set[Answer]:
        """What the function KEY answers itself (not what it reaches)."""
        constants = self.modules[key[0]].constants
        calls = (node for node in ast.walk(self.functions[key]) if isinstance(node, ast.Call))
        return {answer for call in calls if (answer := _answer(call, constants)) is not None}

    def reached(self, start: Iterable[Key]) -> set[Key]:
        """START and every function they reach."""
        seen: set[Key] = set()
        todo = list(start)
        while todo:
            key = todo.pop()
            if key not in seen:
                seen.add(key)
                todo.extend(self._named(key))
        return seen

    def _named(self, key: Key) -> Iterator[Key]:
        module, qualname = self.modules[key[0]], key[1]
        owner = qualname.partition(".")[0] if "." in qualname else None
        for node in _used(self.functions[key]):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                yield from self._resolve(module, node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "self" and owner is not None:
                    yield from self._members(module.name, owner, node.attr)
                else:
                    yield from self._attribute(module, node.value.id, node.attr)

    def _resolve(self, module: Module, name: str) -> Iterator[Key]:
        """The function or class NAME stands for in MODULE (its own or imported), if it is one of ours."""
        if (module.name, name) in self.functions:
            yield (module.name, name)
        elif name in module.classes:
            yield from self._members(module.name, name)
        elif name in module.imports:
            source, imported = module.imports[name]
            if imported is not None and source in self.modules:
                yield from self._resolve(self.modules[source], imported)

    def _attribute(self, module: Module, value: str, attr: str) -> Iterator[Key]:
        source, imported = module.imports.get(value, (None, None))
        if source is not None and imported is None and source in self.modules:  # module.f
            yield from self._resolve(self.modules[source], attr)
        for owner_module, owner in self._classes_named(module, value):  # Class.f
            yield from self._members(owner_module, owner, attr)

    def _classes_named(self, module: Module, name: str) -> Iterator[tuple[str, str]]:
        if name in module.classes:
            yield module.name, name
        source, imported = module.imports.get(name, (None, None))
        if source in self.modules and imported in self.modules[source].classes:
            yield source, imported

    def _members(self, module: str, owner: str, attr: str | None = None) -> Iterator[Key]:
        methods = self.modules[module].classes.get(owner, [])
        # A class named on its own stands for all its methods (instantiating it runs __init__, and its
        # instances may be handed on): more answers, never fewer.
        yield from ((module, f"{owner}.{m}") for m in methods if attr is None or m == attr)


def _used(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The nodes of FUNCTION's body that use what they name: not a type only looked at (annotations,
    ``isinstance``/``issubclass``, ``except``), which runs none of its code."""
    looked_at: set[int] = set()
    for node in ast.walk(ast.Module(body=function.body, type_ignores=[])):
        types: list[ast.expr | None] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2:
            types = [node.args[1]] if node.func.id in ("isinstance", "issubclass") else []
        elif isinstance(node, ast.ExceptHandler):
            types = [node.type]
        elif isinstance(node, ast.AnnAssign):
            types = [node.annotation]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            types = [node.returns, *(a.annotation for a in ast.walk(node.args) if isinstance(a, ast.arg))]
        looked_at |= {id(n) for t in types if t is not None for n in ast.walk(t)}
    for node in ast.walk(ast.Module(body=function.body, type_ignores=[])):
        if id(node) not in looked_at:
            yield node


def _read(name: str, path: Path) -> Module:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = Module(name, tree)
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                module.constants |= {t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                module.imports[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module.imports[alias.asname or alias.name] = (alias.name, None)
    return module


def _answer(call: ast.Call, constants: dict[str, str]) -> Answer | None:
    def text(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    func, args = call.func, call.args
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name == "bad_request" and args and (code := text(args[0])):
        return HTTPStatus.BAD_REQUEST, code
    status = args[0] if len(args) > 1 else None
    if (
        isinstance(status, ast.Attribute)
        and isinstance(status.value, ast.Name)
        and status.value.id == "HTTPStatus"
        and HTTPStatus[status.attr] >= 400
        and (code := text(args[1]))
    ):
        return HTTPStatus[status.attr], code
    return None


@dataclass(frozen=True)
class Handlers:
    """The handler module's functions by what ``app`` makes of them."""

    routes: dict[Route, Key]  # @app.get(path), @app.post(path), ...
    everywhere: list[Key]  # @app.exception_handler(...): answers for every route
    nowhere: list[Key]  # @app.not_found: answers only events API Gateway never sends


def handlers(source: Source) -> Handlers:
    routes: dict[Route, Key] = {}
    everywhere: list[Key] = []
    nowhere: list[Key] = []
    for node in source.modules[HANDLER].tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
                continue
            if target.value.id != "app":
                continue
            key = (HANDLER, node.name)
            if target.attr == "exception_handler":
                everywhere.append(key)
            elif target.attr == "not_found":
                nowhere.append(key)
            elif call and call.args and isinstance(path := call.args[0], ast.Constant):
                routes[route(target.attr, str(path.value))] = key
    return Handlers(routes, everywhere, nowhere)


def route(method: str, path: str) -> Route:
    """METHOD and PATH with each parameter as ``{}``: ``/jobs/<job_id>`` (Powertools) and ``/jobs/{jobId}``
    (OpenAPI, the template) are the same route."""
    return method.upper(), re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def route_answers(src: Path = SRC) -> dict[Route, set[Answer]]:
    """Every answer each route of the API function can give (its error handlers' included)."""
    source = Source(src)
    found = handlers(source)
    return {
        at: {answer for key in source.reached([handler, *found.everywhere]) for answer in source.answers(key)}
        for at, handler in found.routes.items()
    }


def unreached_answers(src: Path = SRC) -> dict[Answer, list[Key]]:
    """Answers the source gives that no route reaches (nor ``not_found``), with the functions giving them:
    dead code, or a call the reader cannot follow (then route_answers would miss them)."""
    source = Source(src)
    found = handlers(source)
    reached = source.reached([*found.routes.values(), *found.everywhere, *found.nowhere])
    unreached: dict[Answer, list[Key]] = {}
    for key in sorted(set(source.functions) - reached):
        for answer in source.answers(key):
            unreached.setdefault(answer, []).append(key)
    return unreached
