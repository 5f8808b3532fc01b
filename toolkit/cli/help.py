"""How ``--help`` shows rbkit's options: in words a user types, not Python's types.

Typer names each value by its Python type (``<bool>``, ``<path>``, ``<int range>``,
``<list[int]>``) and writes a required argument as ``{BACKUP}``. :class:`Command`, the class of
every rbkit command, shows instead: nothing for a flag, the option's metavar for a value (one
given in the option, else ``N`` for a number, ``a|b|c`` for a choice, ``PATH`` for a path and
the option's name in capitals for text), and arguments by their names alone (``BACKUP``,
``[BACKUP]`` when it may be left out).
"""

from __future__ import annotations

from typing import Any, get_args

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Argument(TyperArgument):
    """An argument whose help shows its name (the metavar), never its Python type."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]


def metavar_of(option: Any) -> str:
    """What the help shows after an option: "" for a flag, else a word for its value."""
    if option.is_flag or option.count:
        return ""
    if option.metavar:
        return str(option.metavar)
    kind = option.type_descriptor
    if kind.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in kind.choices or ())
    annotation = get_args(kind.annotation)[0] if kind.is_list else kind.annotation
    if annotation in (int, float):
        return "N"
    if kind.is_path:
        return "PATH"
    return (option.name or "value").upper()


def plain_params(params: list[Any]) -> None:
    """Give every option a metavar a user understands and every argument its own name."""
    for param in params:
        if isinstance(param, TyperArgument) and not isinstance(param, _Argument):
            param.__class__ = _Argument
        elif isinstance(param, TyperOption):
            param.metavar = metavar_of(param)


class _Plain:
    """What :class:`Command` and :class:`Group` add to Typer's classes."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        plain_params(params)
        return params

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class Command(_Plain, TyperCommand):
    """An rbkit command: Typer's, with its help in plain words (see the module docstring)."""


class Group(_Plain, TyperGroup):
    """The ``rbkit`` group: its own options (``--version``, completion...) shown likewise."""
