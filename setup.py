"""Build hook for the optional C accelerators; everything else is in pyproject.toml.

``optional=True``: where no C compiler is at hand the install goes on, and the parser runs in
pure Python (same results, slower on large files).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "parsers.rdb._speedups",
            ["parsers/rdb/_speedups.c", "parsers/rdb/_sanitize.c"],
            depends=["parsers/rdb/_speedups.h"],
            optional=True,
            extra_compile_args=["-O2", "-Wall"],
        ),
        Extension(
            "parsers.aof._speedups",
            ["parsers/aof/_speedups.c"],
            depends=["parsers/aof/_frame.h"],
            optional=True,
            extra_compile_args=["-O2", "-Wall"],
        ),
        Extension(
            "toolkit.check.keyspace._compact",
            ["toolkit/check/keyspace/_compact.c"],
            depends=["parsers/aof/_frame.h", "parsers/rdb/_speedups.h"],
            optional=True,
            extra_compile_args=["-O2", "-Wall"],
        ),
        Extension(
            "toolkit.server._hashset",
            ["toolkit/server/_hashset.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall"],
        ),
    ]
)
