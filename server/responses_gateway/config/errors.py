"""The one exception the config layer raises."""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(Exception):
    """A config file that cannot be used. Each problem names the file and the key path, e.g.
    ``config/gateway.yaml: model_list[1].litellm_params.timeout: Input should be a valid number``.

    ``problems`` holds one line per problem so a CLI can list them all, not just the first.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


def format_loc(loc: Sequence[str | int]) -> str:
    """``("model_list", 1, "litellm_params", "timeout")`` -> ``model_list[1].litellm_params.timeout``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"
