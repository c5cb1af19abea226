"""The shared scoring tools (../shared/tools): loaded by path, so every figure scores alike."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT.parent / "shared" / "tools"


def load(name: str, tools: Path = TOOLS):
    """Import ../shared/tools/<name>.py (evaluate, reference) as a module of that name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(tools) / f"{name}.py")
    if spec is None or not (Path(tools) / f"{name}.py").is_file():
        raise SystemExit(f"pycam bench: {tools}/{name}.py is missing (../shared is not beside this checkout)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
