"""The two stages that start an agent on a far Python (docs/contexts.md, "Bootstrap").

Stage 1 is a command line of about 360 bytes that needs no quoting inside single quotes: it
says which bytecode its Python runs, reads a stage-2 header and exactly the stage-2 bytes from
fd 0 and runs them, leaving the rest of fd 0 to the link.
Stage 2 is the agent (_agent.py) without its docstrings and comments, zlib-compressed. Both
are made in C (src/context/bootstrap.c; the agent compressed at build time, from
agent_source() here).
"""
import os


HERE = os.path.dirname(__file__)


def _bare(path):
    """The module at path as a syntax tree without its docstrings (comments are gone too)."""
    import ast
    with open(path, "rb") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def agent_source(path=os.path.join(HERE, "_agent.py")):
    """agent_source() -> bytes: the agent as sent: without its docstrings and comments,
    which are for readers here, not for the far interpreter (a third of the bytes). The
    build runs it (src/context/gen_agent_blob.py) to make the C copy."""
    import ast
    return ast.unparse(_bare(path)).encode()


def session_source(agent=os.path.join(HERE, "_agent.py"),
                   completion=os.path.join(HERE, "_completion.py"),
                   session=os.path.join(HERE, "_session.py")):
    """session_source() -> bytes: the agent of a `limpet serve` environment: the agent,
    completion and the REPL sessions (_session.py) as one module, bare as agent_source()
    makes it; the agent's own `if __name__ == "__main__"` is left out, _session.py's last
    lines start it as a Session. The build makes it the second stage 2."""
    import ast
    head = _bare(agent)
    if isinstance(head.body[-1], ast.If):  # the agent's main(): the session's tail runs it
        head.body.pop()
    for path in (completion, session):
        head.body += _bare(path).body
    return ast.unparse(head).encode()


def agent_payload():
    """agent_payload() -> bytes: the agent's source compressed (stage 2 for any Python), as
    the build made it."""
    from ._limpet import agent_payload as built
    return built()


def payloads(compiled=True):
    """payloads(compiled=True) -> dict: what launch() chooses stage 2 from: "source", and
    with compiled, the agent compiled at build time under the tag of the bytecode it is for
    (a far Python with the same bytecode then need not compile it: 6 ms less at every start,
    for 24 KB instead of 7 on the wire, so not for ssh)."""
    from ._limpet import agent_code
    out = {"source": agent_payload()}
    if compiled:
        tag, code = agent_code()
        out[tag] = code
    return out


def stage1_argv(name, python="python3"):
    """stage1_argv(name, python="python3") -> list of str

    The command that starts a far Python, which says which bytecode it runs and then runs
    the stage 2 written to its stdin; name ("USER@HOST") is how the process shows in ps
    (the agent adds its PID). Made in C (src/context/bootstrap.c).
    """
    from ._limpet import stage1_argv as built
    return built(name, python)
