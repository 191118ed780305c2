"""The package's modules import each other without cycles (lazy imports inside functions
count: a cycle is a cycle wherever the import statement sits)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pipeorgan_jax"


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path, name: str, modules: set) -> set:
    out = set()
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                base = f"{anchor}.{base}" if base else anchor
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def graph() -> dict:
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    mods = set(files)
    g = {m: imports_of(p, m, mods) for m, p in files.items()}
    # a submodule imports its package's __init__ implicitly; that is not a cycle
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in g.items()}


def find_cycle(g: dict):
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(g.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                c = visit(t)
                if c:
                    return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state:
            c = visit(m)
            if c:
                return c
    return None


def test_no_import_cycles():
    g = graph()
    assert "pipeorgan_jax.cost.tables" in g and g["pipeorgan_jax.app"]
    assert find_cycle(g) is None, " -> ".join(find_cycle(g))


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
