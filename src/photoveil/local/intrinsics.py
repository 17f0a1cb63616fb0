"""CloudFormation intrinsic functions, resolved for the local account.

Parameters take their defaults and conditions are evaluated with them, as a `sam deploy` with no
overrides would. What the caller does not provide (an attribute only AWS knows) resolves to None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from photoveil.local.account import ACCOUNT_ID, REGION, STACK_NAME

_STACK_ID = (
    f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/10ca1000-0000-4000-8000-000000000000"
)
PSEUDO_PARAMETERS = {
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": _STACK_ID,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_NO_VALUE = object()  # Ref AWS::NoValue: the item or property is left out


class Resolver:
    """Resolves intrinsics in template values; None where only AWS could resolve them.

    ``refs`` gives what ``Ref`` returns for resources, ``attributes`` what ``Fn::GetAtt`` returns
    (keyed "LogicalId.Attribute").
    """

    def __init__(
        self, template: dict[str, Any], refs: dict[str, Any], attributes: dict[str, Any] | None = None
    ) -> None:
        parameters = template.get("Parameters") or {}
        self.refs = {name: spec.get("Default") for name, spec in parameters.items()}
        self.refs |= PSEUDO_PARAMETERS | {"AWS::NoValue": _NO_VALUE} | refs
        self.attributes = attributes or {}
        self.conditions = template.get("Conditions") or {}
        self.mappings = template.get("Mappings") or {}
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": lambda name: self.refs.get(name),
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": lambda arg: _join(*self(arg)),
            "Fn::Split": lambda arg: _split(*self(arg)),
            "Fn::Select": lambda arg: _select(*self(arg)),
            "Fn::If": self._if,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Equals": lambda arg: _equals(*self(arg)),
            "Fn::Not": lambda arg: not self(arg[0]),
            "Fn::And": lambda arg: all(self(arg)),
            "Fn::Or": lambda arg: any(self(arg)),
            "Condition": self.condition,
        }

    def __call__(self, value: Any) -> Any:
        """VALUE with every intrinsic in it resolved."""
        got = self._resolve(value)
        return None if got is _NO_VALUE else got

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [got for got in map(self._resolve, value) if got is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(name, arg)] = value.items()
            if name in self._functions and (name != "Condition" or isinstance(arg, str)):
                return self._functions[name](arg)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions."""
        return bool(self(self.conditions[name]))

    def _get_att(self, arg: Any) -> Any:
        target = arg if isinstance(arg, str) else ".".join(str(part) for part in self(arg))
        return self.attributes.get(target)

    def _find_in_map(self, arg: list[Any]) -> Any:
        mapping, key, name = (str(part) for part in self(arg))
        return self.mappings[mapping][key][name]

    def _if(self, arg: list[Any]) -> Any:
        name, if_true, if_false = arg
        return self._resolve(if_true if self.condition(name) else if_false)

    def _sub(self, arg: Any) -> str | None:
        text, variables = (arg[0], self(arg[1])) if isinstance(arg, list) else (arg, {})
        unresolved = False

        def substitute(match: re.Match[str]) -> str:
            nonlocal unresolved
            name = match.group(1)
            if name in variables:
                got = variables[name]
            elif "." in name:
                got = self.attributes.get(name)
            else:
                got = self.refs.get(name)
            unresolved = unresolved or got is None
            return "" if got is None else str(got)

        text = re.sub(r"\$\{([^}!]+)\}", substitute, text)
        return None if unresolved else text


def _join(separator: str, parts: list[Any] | None) -> str | None:
    if parts is None or None in parts:
        return None
    return separator.join(str(part) for part in parts)


def _split(separator: str, text: str | None) -> list[str] | None:
    return None if text is None else text.split(separator)


def _select(index: int, items: list[Any] | None) -> Any:
    return None if items is None else items[int(index)]


def _equals(left: Any, right: Any) -> bool:
    return str(left) == str(right)
