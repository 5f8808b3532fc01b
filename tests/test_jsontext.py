"""toolkit/cli/jsontext.py: the text of json.dumps(obj, indent=...), byte for byte."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest

from toolkit.cli.jsontext import dumps_indented


class Number(enum.IntEnum):
    ONE = 1


class Word(str, enum.Enum):
    B = "b"


CASES: list[Any] = [
    {},
    [],
    "x",
    3,
    None,
    True,
    [[[]], {}, [{}]],
    {"a": {"b": [1, {"c": None}], "d": (1, 2.5)}},
    {2: 2, 1.5: math.nan, True: [], False: 0, None: {}, "é\n\x00\u2028": "🙂"},
    [math.inf, -math.inf, 1e300, -0.0, 0.1, 2**70, -(2**63)],
    {"e": Number.ONE, "s": Word.B, Number.ONE: Word.B},
    {"keys": [{"db": 0, "key": "k\\1", "kinds": ["added"], "a": None, "b": {"size": 2}}] * 3},
]


@pytest.mark.parametrize("obj", CASES)
@pytest.mark.parametrize("indent", [1, 2, 4])
def test_same_text_as_json_dumps(obj: Any, indent: int) -> None:
    assert dumps_indented(obj, indent) == json.dumps(obj, indent=indent)


def test_what_json_refuses_is_refused_the_same_way() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_indented({"x": object()})
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_indented(cycle)
