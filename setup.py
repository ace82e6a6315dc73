"""Build hook: compile the engine's hot path to C with mypyc.

The compiled modules are the same Python source, type-checked by mypy and
translated; the engine runs them about half again as fast or better (see
``bench/engine.py``). Set ``CHURN_MONITOR_PURE=1`` to install plain Python, for
example on a machine without a C compiler or while editing those modules.
"""

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, ExecError, PlatformError

# Every module an event goes through between the raw bytes and a warning, and
# the checkpoint that writes each changed customer.
COMPILED = [
    "monitor/decode/decoder.py",
    "monitor/decode/records.py",
    "monitor/state/clock.py",
    "monitor/state/customer.py",
    "monitor/engine/accounting.py",
    "monitor/engine/core.py",
    "monitor/engine/lifecycle.py",
    "monitor/engine/snapshot.py",
    "monitor/engine/detectors/__init__.py",
    "monitor/engine/detectors/billing.py",
    "monitor/engine/detectors/common.py",
    "monitor/engine/detectors/features.py",
    "monitor/engine/detectors/feedback.py",
    "monitor/engine/detectors/params.py",
    "monitor/engine/detectors/usage.py",
]


def _extensions() -> list[object]:
    if os.environ.get("CHURN_MONITOR_PURE", "").lower() in ("1", "true", "yes"):
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3", group_name="monitor_engine"))


class _BuildExt(build_ext):  # type: ignore[misc]
    """Say what to do when compiling fails; stamp compiled files with the build time.

    The test suite refuses a compiled module older than its source (an edit
    not rebuilt yet); a copy keeping an old cache time would trip that.
    """

    def run(self) -> None:
        try:
            super().run()
        except (CompileError, ExecError, PlatformError) as exc:
            raise SystemExit(
                f"churn-monitor: compiling the engine failed: {exc}\n"
                "Install plain Python instead (about half the speed): "
                "CHURN_MONITOR_PURE=1 pip install ..."
            ) from exc

    def copy_extensions_to_source(self) -> None:
        super().copy_extensions_to_source()
        for ext in self.extensions:
            name = self.get_ext_filename(self.get_ext_fullname(ext.name))
            target = Path(name)
            if target.exists():
                target.touch()


setup(ext_modules=_extensions(), cmdclass={"build_ext": _BuildExt})
