"""Completion (issue 4, item 8): names, attributes, keywords and builtins
against the live namespace, without running properties or __getattr__."""
from limpet.client import Client


def complete(c, s, text, cursor=None):
    fields = {"session": s, "text": text}
    if cursor is not None:
        fields["cursor"] = cursor
    d = c.request("complete", **fields).final
    return d["start"], d["matches"]


def test_names_keywords_builtins(host):
    with Client(host.address) as c:
        s = c.clone()
        assert complete(c, s, "dat") == (0, ["data"])
        assert complete(c, s, "x = ste") == (4, ["step"])
        assert "while" in complete(c, s, "whi")[1]
        assert "isinstance" in complete(c, s, "isin")[1]
        c.eval(s, "caf\u00e9_count = 3")
        assert complete(c, s, "print(caf") == (6, ["caf\u00e9_count"])


def test_attributes_of_modules_and_nested_modules(host):
    with Client(host.address) as c:
        s = c.clone()
        c.eval(s, "import os")
        start, m = complete(c, s, "os.pa")
        assert start == 3 and {"path", "pardir", "pathsep"} <= set(m)
        assert "join" in complete(c, s, "os.path.jo")[1]
        assert complete(c, s, "nosuchname.x") == (11, [])


def test_private_names_only_when_asked(host):
    with Client(host.address) as c:
        s = c.clone()
        c.eval(s, "class K:\n    _hidden = 1\n    shown = 2\n")
        assert complete(c, s, "K.")[1] == ["shown"]   # as dir(K) has it
        assert "_hidden" in complete(c, s, "K._")[1]


def test_no_user_code_runs(host):
    with Client(host.address) as c:
        s = c.clone()
        c.eval(s, "ran = []\n"
                  "class Trap:\n"
                  "    @property\n"
                  "    def prop(self):\n"
                  "        ran.append('property')\n"
                  "        return 1\n"
                  "    def __getattr__(self, name):\n"
                  "        ran.append('getattr')\n"
                  "    def __dir__(self):\n"
                  "        ran.append('dir')\n"
                  "        return []\n"
                  "trap = Trap()\ntrap.field = 5\n")
        assert set(complete(c, s, "trap.")[1]) >= {"prop", "field"}
        complete(c, s, "trap.prop.")
        complete(c, s, "trap.missing.")
        assert c.eval(s, "ran", interactive=True).value == "[]"


def test_cursor_in_the_middle(host):
    with Client(host.address) as c:
        s = c.clone()
        assert complete(c, s, "dat + 1", cursor=3) == (0, ["data"])
