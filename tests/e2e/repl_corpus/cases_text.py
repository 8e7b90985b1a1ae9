"""Unicode and very long lines."""

LONG_SUM = "x = " + " + ".join(["1"] * 500)    # deeper fails to compile
LONG_LIST = "x = [" + ", ".join(["12345"] * 20000) + "]"
LONG_NAME = "n" * 5000

CASES = [
    ("unicode_str_value", ["'caf\u00e9'"]),
    ("unicode_cjk_print", ["print('\u65e5\u672c\u8a9e')"]),
    ("unicode_emoji", ["s = '\U0001f600'", "s", "len(s)"]),
    ("unicode_identifier", ["\u03c0 = 3.14159", "round(\u03c0, 2)"]),
    ("unicode_identifier_nfkc", ["\ufb01 = 1", "fi"]),
    ("unicode_escape_value", ["'\\u00e9\\N{SNOWMAN}'"]),
    ("unicode_combining", ["'e\u0301'", "len('e\u0301')"]),
    ("unicode_rtl", ["'\u05e9\u05dc\u05d5\u05dd'"]),
    ("unicode_nonprintable_repr", ["'\\x07\\u200b'"]),
    ("unicode_surrogate_repr", ["'\\ud800'"]),
    ("unicode_in_exception", ["raise ValueError('\u00fcber \u2603')"]),
    ("unicode_in_syntax_error_caret", ["'\u65e5\u672c' + = 1"]),
    ("unicode_invalid_char_error", ["x = 1 \u2013 2"]),
    ("unicode_nbsp_error", ["x\u00a0= 1"]),
    ("unicode_name_error", ["caf\u00e9"]),
    ("unicode_in_def_traceback", ["def f\u00fc():", "    raise KeyError('\u00e4')", "",
                                  "f\u00fc()"]),
    ("unicode_coding_cookie_in_block", ["if 1:", "    # -*- coding: latin-1 -*-",
                                        "    s = '\u00e9'", "", "s"]),
    ("unicode_coding_cookie_first_line", ["# -*- coding: latin-1 -*-\n'\u00e9'"]),
    ("unicode_surrogate_in_traceback", ["raise ValueError('\\ud800')"]),
    ("unicode_bom_like", ["'\ufeff'"]),
    ("long_sum_line", [LONG_SUM, "x"]),
    ("long_list_line", [LONG_LIST, "len(x)", "x[-3:]"]),
    ("long_string_value", ["'ab' * 20000"]),
    ("long_print", ["print('z' * 100000)"]),
    ("long_name", [LONG_NAME + " = 1", LONG_NAME]),
    ("long_name_error", [LONG_NAME]),
    ("long_syntax_error_line", [LONG_SUM + " +"]),
    ("long_syntax_error_caret_far", ["x = [" + "1, " * 5000 + "1 1]"]),
    ("long_list_value", ["list(range(3000))"]),
    ("long_traceback_message", ["raise ValueError('m' * 50000)"]),
    ("long_block", ["def f():"] + [f"    v{i} = {i}" for i in range(300)]
     + ["    return v299", "", "f()"]),
    ("long_multiline_string", ['s = """'] + ["line %d" % i for i in range(200)]
     + ['"""', "s.count('line')"]),
    ("long_many_brackets", ["(" * 150 + "1" + ")" * 150]),
]
