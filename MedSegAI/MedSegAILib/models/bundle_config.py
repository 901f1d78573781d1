"""Reading MONAI bundle configs without running arbitrary code from them.

A bundle config (``configs/inference.json`` or ``.yaml``) is a program: ``"$..."`` strings
are Python expressions and ``"_target_"`` names any importable callable, so instantiating a
downloaded config as MONAI does would run whatever it says. We instantiate only what the
network needs, after vetting it:

- only the config items reachable by ``@`` references from the requested ids are kept
  (``imports``, datasets, evaluators, handlers... are never touched);
- every ``_target_`` must resolve to a class or function *defined* in an allowed module
  (``monai.networks.nets|blocks|layers``, ``monai.apps.detection.networks|utils``,
  ``torch.nn.modules``), reached without private (``_``) names;
- every ``"$..."`` expression must be a call of such a name (or a bare ``@`` reference)
  whose arguments are literals, lists, tuples, dicts or ``@`` references;
- ``%`` macros, relative ``@#`` references, ``_mode_`` other than ``default`` and
  ``pretrained`` weights (which MONAI would download) are refused.

What passes is handed to :class:`monai.bundle.ConfigParser` to instantiate.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError

ALLOWED_MODULES = (
    "monai.networks.nets",
    "monai.networks.blocks",
    "monai.networks.layers",
    "monai.apps.detection.networks",
    "monai.apps.detection.utils",
    "torch.nn.modules",
)
_ALLOWED_TEXT = ", ".join(ALLOWED_MODULES)
_REF = re.compile(r"@([A-Za-z_][\w]*(?:::[\w]+)*)")
_PLACEHOLDER = "__medsegai_ref_"


def read_config(path: Path) -> dict[str, Any]:
    """Read a bundle config file (JSON or YAML, safe loaders only).

    Raises:
        InputError: not readable or not a mapping.
    """
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise InputError(f"{path}: cannot read the bundle config ({error}); is it a MONAI bundle?") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a bundle config must be a mapping of ids to items")
    return data


def references(value: Any) -> set[str]:
    """The top-level ids that ``@`` references in ``value`` (recursively) point to."""
    found: set[str] = set()
    if isinstance(value, str):
        if value.startswith("$") or value.startswith("@"):
            found.update(match.split("::")[0] for match in _REF.findall(value))
    elif isinstance(value, dict):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def reachable_subconfig(config: dict[str, Any], ids: Iterable[str], source: str) -> dict[str, Any]:
    """The items named by ``ids`` plus everything they reference, transitively.

    Raises:
        InputError: an id or a reference is missing from the config.
    """
    keep: dict[str, Any] = {}
    pending = list(ids)
    while pending:
        key = pending.pop()
        if key in keep:
            continue
        if key not in config:
            raise InputError(
                f"{source}: the bundle config has no {key!r} item; it needs one to build the network"
            )
        keep[key] = config[key]
        pending.extend(references(config[key]) - set(keep))
    return keep


def vet_subconfig(subconfig: dict[str, Any], source: str) -> None:
    """Refuse anything in ``subconfig`` that could run code beyond building networks.

    Raises:
        InputError: names the item and what is not allowed.
    """
    for key, value in subconfig.items():
        _vet_value(value, key, source)


def instantiate(config: dict[str, Any], item_id: str, source: str) -> Any:
    """Vet and instantiate one item of a bundle config with :class:`monai.bundle.ConfigParser`.

    Raises:
        InputError: the item, or something it references, is not allowed or fails to build.
    """
    from monai.bundle import ConfigParser  # monai is slow to import; only bundles need it

    subconfig = reachable_subconfig(config, [item_id], source)
    vet_subconfig(subconfig, source)
    parser = ConfigParser(subconfig)
    try:
        return parser.get_parsed_content(item_id, instantiate=True)
    except Exception as error:  # noqa: BLE001 - MONAI raises many types; report one line
        cause = error.__cause__ or error
        raise InputError(
            f"{source}: cannot build {item_id!r} from the bundle config ({type(cause).__name__}: {cause})"
        ) from None


def resolve_plain(config: dict[str, Any], value: Any, source: str) -> Any:
    """Resolve a value that is a literal or a whole-string ``@id`` reference (recursively).

    Raises:
        InputError: the value is an expression or names a missing id.
    """
    seen = 0
    while isinstance(value, str) and value.startswith("@"):
        seen += 1
        key = value[1:]
        if key not in config or seen > 20:
            raise InputError(f"{source}: reference {value!r} cannot be resolved in the bundle config")
        value = config[key]
    if isinstance(value, str) and value.startswith("$"):
        raise InputError(
            f"{source}: {value!r} is an expression; MedSegAI reads this setting only as a literal value"
        )
    if isinstance(value, list):
        return [resolve_plain(config, item, source) for item in value]
    return value


def target_module(target: str) -> str:
    """The full dotted name a ``_target_`` resolves to (short names via MONAI's locator)."""
    if "." in target:
        return target
    from monai.bundle.config_item import ComponentLocator  # monai is slow to import; only bundles need it

    module = ComponentLocator().get_component_module_name(target)
    if isinstance(module, list):
        module = module[0]
    return f"{module}.{target}" if module else target


def is_allowed_callable(dotted: str) -> bool:
    """True if ``dotted`` names a public class or function defined in an allowed module.

    The name is imported to check where the object is really defined, so a chain through a
    module's globals (``monai.networks.nets.x.os.system``) is refused.
    """
    parts = dotted.split(".")
    if any(not part or part.startswith("_") for part in parts):
        return False
    obj: Any = None
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return False
        break
    if obj is None or not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return False
    module = getattr(obj, "__module__", "") or ""
    return any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_MODULES)


def _vet_value(value: Any, where: str, source: str) -> None:
    if isinstance(value, dict):
        target = value.get("_target_")
        if target is not None:
            if not isinstance(target, str) or not is_allowed_callable(target_module(target)):
                raise InputError(
                    f"{source}: {where} has _target_ {target!r}, "
                    "which is not a network or detection component; "
                    f"MedSegAI only builds classes and functions defined in {_ALLOWED_TEXT}"
                )
            if value.get("_mode_", "default") != "default":
                raise InputError(
                    f"{source}: {where} uses _mode_ {value['_mode_']!r}; only the default mode is allowed"
                )
        for key, item in value.items():
            if key == "pretrained" and item not in (False, None):
                raise InputError(
                    f"{source}: {where} asks for pretrained weights, which would be downloaded; "
                    "set pretrained to false"
                )
            _vet_value(item, f"{where}::{key}", source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _vet_value(item, f"{where}::{index}", source)
    elif isinstance(value, str):
        if value.startswith("%"):
            raise InputError(
                f"{source}: {where} uses the macro {value!r}; macros are not supported, inline the value"
            )
        if value.startswith("@#") or "@#" in value:
            raise InputError(f"{source}: {where} uses a relative reference ({value!r}); use absolute @ids")
        if value.startswith("$"):
            _vet_expression(value[1:], where, source)


def _vet_expression(text: str, where: str, source: str) -> None:
    """Allow only ``dotted.name(literal or @ref, ...)`` or a bare ``@ref``."""
    code = _REF.sub(_PLACEHOLDER, text)
    problem = f"{source}: {where} holds the expression {text!r}, which MedSegAI will not run"
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        raise InputError(f"{problem} (not a single Python expression)") from None

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, ast.Name) and node.id.startswith(_PLACEHOLDER):
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            check(node.operand)
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            for item in node.elts:
                check(item)
            return
        if isinstance(node, ast.Dict):
            for item in [*node.keys, *node.values]:
                if item is not None:
                    check(item)
            return
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None or not is_allowed_callable(name):
                raise InputError(
                    f"{problem} (only calls of classes and functions defined in {_ALLOWED_TEXT} are run)"
                )
            for argument in node.args:
                check(argument)
            for keyword in node.keywords:
                if keyword.arg is None:
                    raise InputError(f"{problem} (** arguments are not allowed)")
                if keyword.arg == "pretrained" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value in (False, None)
                ):
                    raise InputError(
                        f"{problem} (pretrained weights would be downloaded; set pretrained=False)"
                    )
                check(keyword.value)
            return
        raise InputError(f"{problem} ({type(node).__name__} is not allowed)")

    check(tree.body)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and not node.id.startswith(_PLACEHOLDER):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None
