"""The two stages that start an agent on a far Python (docs/contexts.md, "Bootstrap").

Stage 1 is a command line of about 120 bytes that needs no quoting inside single quotes: it
reads exactly the stage-2 bytes from fd 0 and runs them, leaving the rest of fd 0 to the link.
Stage 2 is the agent (_agent.py) without its docstrings and comments, zlib-compressed. Both
are made in C (src/context/bootstrap.c; the agent compressed at build time, from
agent_source() here).
"""
import os


def agent_source(path=os.path.join(os.path.dirname(__file__), "_agent.py")):
    """agent_source() -> bytes: the agent as sent: without its docstrings and comments,
    which are for readers here, not for the far interpreter (a third of the bytes). The
    build runs it (src/context/gen_agent_blob.py) to make the C copy."""
    import ast
    with open(path, "rb") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree).encode()


def agent_payload():
    """agent_payload() -> bytes: the agent compressed (stage 2), as the build made it."""
    from ._limpet import agent_payload as built
    return built()


def stage1_argv(payload_len, name, python="python3", ready=False):
    """stage1_argv(payload_len, name, python="python3", ready=False) -> list of str

    The command that starts a far Python and makes it run the payload_len bytes of stage 2
    written to its stdin; name ("USER@HOST") is how the process shows in ps (the agent adds
    its PID). With ready, it first says so on stderr (_agent.READY), for commands that may
    ask for a password first. Made in C (src/context/bootstrap.c).
    """
    from ._limpet import stage1_argv as built
    return built(payload_len, name, python, ready)
