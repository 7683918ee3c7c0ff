"""Reading the YAML file: syntax errors with their line, duplicate keys, LiteLLM's ``include:``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping: PyYAML would keep the last silently, and a
    second ``model_list:`` pasted lower in the file would drop the first without a word."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse(path: Path, label: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{label}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{label}: cannot read: {exc.strerror or exc}"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([f"{where}: YAML syntax error: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{label}: YAML syntax error: {exc}"]) from None


def read_yaml(path: Path, label: str) -> dict[str, Any]:
    """The file's top-level mapping, with the ``model_list`` of every ``include:``d file appended (LiteLLM
    lets included files carry only a model_list; paths are relative to the including file)."""
    data = _parse(path, label)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{label}: the top level must be a mapping of sections (model_list, ...)"])
    includes = data.pop("include", None) or []
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError([f"{label}: include: must be a list of file paths"])
    for name in includes:
        inc_path = path.parent / name
        inc_label = str(Path(label).parent / name)
        inc = _parse(inc_path, inc_label) or {}
        if not isinstance(inc, dict) or set(inc) - {"model_list"}:
            raise ConfigError([f"{inc_label}: an included file may only contain model_list"])
        models = inc.get("model_list") or []
        if not isinstance(models, list):
            raise ConfigError([f"{inc_label}: model_list: must be a list"])
        data["model_list"] = [*(data.get("model_list") or []), *models]
    return data
