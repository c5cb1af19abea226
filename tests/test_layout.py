"""The house rules of the code base, checked on its import graph (docs/architecture.md, "Map"):
no import circles, no upward imports, settings that import nothing from app, and sys.path edits
only in the launch shells that users, glances and systemd start by path."""
import ast
import re
from pathlib import Path

from tests.conftest import ROOT

SHELLS = {"app.security_system", "app.notifier", "app.who_is_home", "app.s3_upload", "app.slack_socket",
          "app.services", "app.watchdog"}
CORE = {"app", "app.keys", "app.state", "app.utils", "app.backoff", "app.outbox", "app.health", "app.arming",
        "app.startup", "app.alarms", "app.schedule", "app.story", "app.live", "app.access", "app.cameras"}
# Which wings each wing may import besides the core (and itself).
WINGS = {"app.storage": set(), "app.camera": {"app.storage"}, "app.presence": {"app.storage"},
         "app.web": {"app.slack", "app.storage"},
         "app.slack": {"app.storage"}, "app.watch": {"app.storage"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [ROOT / "config.py", *ROOT.glob("config_sections/*.py"), *ROOT.glob("app/**/*.py")]
    return {module_name(f): f for f in files}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at any depth (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, set(modules)) - {name} for name, path in modules.items()}


def wing(module: str) -> str | None:
    return next((w for w in WINGS if module == w or module.startswith(w + ".")), None)


def test_no_import_circles():
    deps = graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(node, trail):
        state[node] = "open"
        for dep in sorted(deps.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(trail[trail.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, trail + [dep])
        state[node] = "done"

    for node in sorted(deps):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_upward_imports():
    wrong = []
    for module, deps in graph().items():
        for dep in deps:
            if dep in SHELLS:
                wrong.append((module, dep, "launch shells are started, never imported"))
            elif module in ("config",) or module.startswith("config_sections"):
                if dep.startswith("app"):
                    wrong.append((module, dep, "the settings import nothing from app"))
            elif module in CORE and dep.startswith("app") and dep not in CORE:
                wrong.append((module, dep, "the core imports no wing"))
            elif wing(module) and dep.startswith("app") and dep not in CORE:
                allowed = {wing(module)} | WINGS[wing(module)]
                if wing(dep) not in allowed:
                    wrong.append((module, dep, f"{wing(module)} may import only {sorted(allowed)}"))
    assert wrong == []


def test_every_module_is_placed():
    """A new module lands in the core, a wing, or is a shell, the Flask app or one of the two that
    run the wings (the pycam command, the services process): never nowhere."""
    homeless = [m for m in project_modules() if m.startswith("app") and m not in CORE | SHELLS
                and m not in ("app.flask_app", "app.cli", "app.together") and wing(m) is None]
    assert homeless == []


def test_sys_path_is_edited_only_in_the_launch_shells():
    shells = {ROOT / (name.replace(".", "/") + ".py") for name in SHELLS}
    files = [ROOT / "config.py", ROOT / "run_flask.py", ROOT / "gunicorn.conf", *ROOT.glob("config_sections/*.py"),
             *ROOT.glob("app/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py")]
    offenders = [str(f.relative_to(ROOT)) for f in files if f not in shells and f != Path(__file__)
                 and re.search(r"sys\.path\.(insert|append)|sys\.path\[|noqa: E402", f.read_text())]
    assert offenders == []
