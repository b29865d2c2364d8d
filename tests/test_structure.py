"""The shape of the package: no import cycles among undersr's modules."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'undersr')
# Registry scans import these modules by file name (undersr.registry.register_package), invisible to ast.
SCANNED = {'undersr.archs': '_arch.py', 'undersr.data': '_dataset.py', 'undersr.models': '_model.py'}


def module_files():
    """``{module name: file}`` for every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].replace(os.sep, '.')
                found[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = os.path.join(folder, name)
    return found


def module_level_imports(path, name, modules):
    """The undersr modules that ``path`` imports when it is imported (not inside functions)."""
    tree = ast.parse(open(path).read())
    targets = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f'{path}: relative import; the package uses absolute ones'
            base = node.module
            for alias in node.names:
                targets.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base)
    if name in SCANNED:
        folder = os.path.dirname(path)
        targets |= {f'{name}.{f[:-3]}' for f in os.listdir(folder) if f.endswith(SCANNED[name])}
    return {t for t in targets if t in modules and t != name}


def find_cycle(graph):
    """A cycle in ``graph`` (``{node: set of nodes}``) as a list of nodes, or ``None``."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 'done'
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None


def test_no_import_cycle_in_the_package():
    modules = module_files()
    graph = {name: module_level_imports(path, name, modules) for name, path in modules.items()}
    assert graph['undersr.archs'] >= {'undersr.archs.vqvae2_arch', 'undersr.registry'}  # the scan is seen
    assert 'undersr.weights' in graph['undersr.basicsr_fixes']
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))


def test_every_subcommand_has_a_module_with_main():
    import importlib

    from undersr.cli import SUBCOMMANDS, module_name
    for command in SUBCOMMANDS:
        assert callable(importlib.import_module(module_name(command)).main), command


def test_version_from_the_command_and_from_python_m():
    import subprocess
    import sys

    import undersr
    out = subprocess.run([sys.executable, '-m', 'undersr', '--version'], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f'undersr {undersr.__version__}'
