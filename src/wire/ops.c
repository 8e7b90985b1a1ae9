/* ops.c: the operation table of protocol version 1 and frame checking. */
#include "ops.h"

#include <string.h>

#define STR_MAX 4096 /* a generic short text field; the header limit bounds it anyway */
#define END {NULL, LP_FT_BOOL, false, 0, 0}
#define SESSION {"session", LP_FT_SESSION, true, 0, 0}

static const lp_field_t f_none[] = {END};
static const lp_field_t f_session[] = {SESSION, END};
static const lp_field_t f_hello[] = {
    {"protocol", LP_FT_INTS, true, 1, LP_WIRE_VERSIONS_MAX},
    {"client", LP_FT_STR, true, 1, LP_WIRE_CLIENT_NAME_MAX},
    {"max_payload", LP_FT_INT, false, LP_WIRE_PAYLOAD_MIN, LP_WIRE_PAYLOAD_CEILING},
    {"token", LP_FT_STR, false, 1, LP_WIRE_TOKEN_MAX},
    {"session", LP_FT_BOOL, false, 0, 0},
    {"caps", LP_FT_STRS, false, 0, 64},
    END};
static const lp_field_t f_clone[] = {{"env", LP_FT_NAME, false, 0, 0}, END};
static const lp_field_t f_eval[] = {
    SESSION,
    {"interactive", LP_FT_BOOL, false, 0, 0},
    {"filename", LP_FT_STR, false, 1, 1024},
    {"mode", LP_FT_STR, false, 1, 16}, /* capability cell; its value is checked where used */
    END};
static const lp_field_t f_stdin[] = {SESSION, {"eof", LP_FT_BOOL, false, 0, 0}, END};
static const lp_field_t f_complete[] = {
    SESSION,
    {"text", LP_FT_STR, true, 0, STR_MAX},
    {"cursor", LP_FT_INT, false, 0, STR_MAX},
    END};
static const lp_field_t f_inspect[] = {
    SESSION,
    {"text", LP_FT_STR, true, 0, LP_INSPECT_TEXT_MAX},
    {"cursor", LP_FT_INT, false, 0, LP_INSPECT_TEXT_MAX},
    {"detail", LP_FT_INT, false, 0, 1},
    END};
static const lp_field_t f_out[] = {SESSION, {"stream", LP_FT_STREAM, true, 0, 0}, END};
static const lp_field_t f_value[] = {SESSION, {"type", LP_FT_STR, false, 1, 256}, END};
static const lp_field_t f_exception[] = {SESSION, {"type", LP_FT_STR, true, 1, 256}, END};
static const lp_field_t f_input[] = {
    SESSION,
    {"prompt", LP_FT_STR, true, 0, STR_MAX},
    {"echo", LP_FT_BOOL, true, 0, 0},
    END};
static const lp_field_t f_done[] = {{"status", LP_FT_STR, true, 1, 32}, END};
static const lp_field_t f_error[] = {
    {"code", LP_FT_STR, true, 1, 64},
    {"message", LP_FT_STR, true, 0, STR_MAX},
    END};
static const lp_field_t f_bye[] = {
    {"code", LP_FT_STR, true, 1, 64},
    {"message", LP_FT_STR, true, 0, STR_MAX},
    END};
static const lp_field_t f_page[] = {SESSION, END};
static const lp_field_t f_env[] = {{"env", LP_FT_NAME, true, 0, 0}, END};
static const lp_field_t f_call[] = {
    {"session", LP_FT_SESSION, false, 0, 0},
    {"ref", LP_FT_BOOL, false, 0, 0},
    END};
static const lp_field_t f_result[] = {{"ref", LP_FT_INT, false, 0, LP_WIRE_ID_MAX}, END};
static const lp_field_t f_refs[] = {{"refs", LP_FT_IDS, true, 1, 4096}, END};
static const lp_field_t f_channel[] = {{"channel", LP_FT_INT, true, 0, LP_WIRE_ID_MAX}, END};
static const lp_field_t f_module[] = {{"name", LP_FT_STR, true, 1, 1024}, END};
static const lp_field_t f_log[] = {
    {"level", LP_FT_INT, true, 0, 100},
    {"logger", LP_FT_STR, true, 0, 1024},
    END};

#define C2S LP_DIR_C2S
#define S2C LP_DIR_S2C
#define BOTH (LP_DIR_C2S | LP_DIR_S2C)
#define REQ LP_KIND_REQUEST
#define REP LP_KIND_REPLY
#define EITHER LP_KIND_EITHER

/* Indexed by lp_op_t. */
static const lp_op_spec_t op_specs[LP_OP__COUNT] = {
    [LP_OP_HELLO] = {"hello", LP_OP_HELLO, C2S, REQ, 0, LP_PL_NONE, f_hello,
                     "open the conversation: versions, limits, identity"},
    [LP_OP_CLONE] = {"clone", LP_OP_CLONE, C2S, REQ, 0, LP_PL_NONE, f_clone,
                     "open a new session"},
    [LP_OP_CLOSE] = {"close", LP_OP_CLOSE, C2S, REQ, 0, LP_PL_NONE, f_session,
                     "close a session and free what it holds"},
    [LP_OP_EVAL] = {"eval", LP_OP_EVAL, C2S, REQ, 0, LP_PL_TEXT, f_eval,
                    "run code in a session"},
    [LP_OP_STDIN] = {"stdin", LP_OP_STDIN, C2S, REQ, 0, LP_PL_TEXT, f_stdin,
                     "answer a session's input() request"},
    [LP_OP_INTERRUPT] = {"interrupt", LP_OP_INTERRUPT, C2S, REQ, 0, LP_PL_NONE, f_session,
                         "interrupt a session's evaluation, or clear its pending input"},
    [LP_OP_COMPLETE] = {"complete", LP_OP_COMPLETE, C2S, REQ, 0, LP_PL_NONE, f_complete,
                        "complete a name or attribute"},
    [LP_OP_DESCRIBE] = {"describe", LP_OP_DESCRIBE, C2S, REQ, 0, LP_PL_NONE, f_none,
                        "list operations, capabilities and limits"},
    [LP_OP_PING] = {"ping", LP_OP_PING, BOTH, REQ, 0, LP_PL_BYTES, f_none,
                    "echo the payload"},
    [LP_OP_OUT] = {"out", LP_OP_OUT, S2C, EITHER, 0, LP_PL_BYTES, f_out,
                   "output written by a session"},
    [LP_OP_VALUE] = {"value", LP_OP_VALUE, S2C, REP, 0, LP_PL_TEXT, f_value,
                     "the repr of an expression's value"},
    [LP_OP_EXCEPTION] = {"exception", LP_OP_EXCEPTION, BOTH, REP, 0, LP_PL_BYTES, f_exception,
                         "an evaluation raised: the traceback"},
    [LP_OP_INPUT] = {"input", LP_OP_INPUT, S2C, REP, 0, LP_PL_NONE, f_input,
                     "a session asks for a line of input"},
    [LP_OP_DONE] = {"done", LP_OP_DONE, BOTH, REP, 0, LP_PL_BYTES, f_done,
                    "the final reply to a request"},
    [LP_OP_ERROR] = {"error", LP_OP_ERROR, BOTH, EITHER, 0, LP_PL_NONE, f_error,
                     "a request or frame was refused"},
    [LP_OP_BYE] = {"bye", LP_OP_BYE, S2C, EITHER, 0, LP_PL_NONE, f_bye,
                   "the server closes this connection"},
    [LP_OP_PAGE] = {"page", LP_OP_PAGE, S2C, REP, LP_CAP_PAGE, LP_PL_TEXT, f_page,
                    "long text for the client's pager (help())"},
    [LP_OP_CHECK] = {"check", LP_OP_CHECK, C2S, REQ, LP_CAP_CHECK, LP_PL_TEXT, f_session,
                     "say whether code is complete, incomplete or invalid; runs nothing"},
    [LP_OP_INSPECT] = {"inspect", LP_OP_INSPECT, C2S, REQ, LP_CAP_INSPECT, LP_PL_NONE, f_inspect,
                       "the help text of the name at a cursor; runs no user code"},
    [LP_OP_ENV_CREATE] = {"env-create", LP_OP_ENV_CREATE, C2S, REQ, LP_CAP_ENV, LP_PL_NONE,
                          f_env, "create a named environment"},
    [LP_OP_ENV_LIST] = {"env-list", LP_OP_ENV_LIST, C2S, REQ, LP_CAP_ENV, LP_PL_NONE, f_none,
                        "list environments"},
    [LP_OP_ENV_INFO] = {"env-info", LP_OP_ENV_INFO, C2S, REQ, LP_CAP_ENV, LP_PL_NONE, f_env,
                        "describe an environment"},
    [LP_OP_ENV_DELETE] = {"env-delete", LP_OP_ENV_DELETE, C2S, REQ, LP_CAP_ENV, LP_PL_NONE,
                          f_env, "delete an environment"},
    [LP_OP_CALL] = {"call", LP_OP_CALL, BOTH, REQ, LP_CAP_CALL, LP_PL_BYTES, f_call,
                    "call a pickled function with pickled arguments"},
    [LP_OP_RESULT] = {"result", LP_OP_RESULT, BOTH, REP, LP_CAP_CALL, LP_PL_BYTES, f_result,
                      "the pickled value of a call"},
    [LP_OP_REF_RELEASE] = {"ref-release", LP_OP_REF_RELEASE, BOTH, REQ, LP_CAP_CALL,
                           LP_PL_NONE, f_refs, "drop remote references"},
    [LP_OP_CHANNEL_OPEN] = {"channel-open", LP_OP_CHANNEL_OPEN, BOTH, REQ, LP_CAP_CHANNEL,
                            LP_PL_NONE, f_channel, "open a byte stream"},
    [LP_OP_CHANNEL_DATA] = {"channel-data", LP_OP_CHANNEL_DATA, BOTH, REQ, LP_CAP_CHANNEL,
                            LP_PL_BYTES, f_channel, "bytes on a stream"},
    [LP_OP_CHANNEL_CLOSE] = {"channel-close", LP_OP_CHANNEL_CLOSE, BOTH, REQ, LP_CAP_CHANNEL,
                             LP_PL_NONE, f_channel, "end a stream"},
    [LP_OP_MODULE_GET] = {"module-get", LP_OP_MODULE_GET, S2C, REQ, LP_CAP_MODULE, LP_PL_NONE,
                          f_module, "fetch a module's source from the parent"},
    [LP_OP_LOG] = {"log", LP_OP_LOG, S2C, REQ, LP_CAP_LOG, LP_PL_TEXT, f_log,
                   "forward a log record to the parent"},
};

static const struct {
    const char *name;
    unsigned bit;
} cap_names[] = {{"env", LP_CAP_ENV},       {"call", LP_CAP_CALL}, {"channel", LP_CAP_CHANNEL},
                 {"module", LP_CAP_MODULE}, {"log", LP_CAP_LOG},   {"page", LP_CAP_PAGE},
                 {"cell", LP_CAP_CELL},     {"check", LP_CAP_CHECK}, {"inspect", LP_CAP_INSPECT}};

#define N_CAP_NAMES (sizeof(cap_names) / sizeof(cap_names[0]))

unsigned lp_cap_bit(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_CAP_NAMES; i++)
        if (strcmp(name, cap_names[i].name) == 0)
            return cap_names[i].bit;
    return 0;
}

json_t *lp_cap_names(unsigned caps)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < N_CAP_NAMES; i++)
        if ((caps & cap_names[i].bit) != 0 &&
            json_array_append_new(a, json_string(cap_names[i].name)) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

const lp_op_spec_t *lp_op_spec(lp_op_t op)
{
    if (op <= LP_OP_UNKNOWN || op >= LP_OP__COUNT)
        return NULL;
    return &op_specs[op];
}

const lp_op_spec_t *lp_op_lookup(const char *name)
{
    for (int i = LP_OP_UNKNOWN + 1; i < LP_OP__COUNT; i++)
        if (strcmp(op_specs[i].name, name) == 0)
            return &op_specs[i];
    return NULL;
}

static bool int_in(const json_t *v, int64_t min, int64_t max)
{
    return json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max;
}

static bool str_len_in(const json_t *v, int64_t min, int64_t max)
{
    return json_is_string(v) && (int64_t)json_string_length(v) >= min &&
           (int64_t)json_string_length(v) <= max;
}

/* Every byte of v's string is one of the set chars (or any printable ASCII
 * when set is NULL), and its length is 1 .. max. */
static bool str_of(const json_t *v, const char *set, size_t max)
{
    const char *s;
    size_t n;

    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (set == NULL ? (s[i] < 0x21 || s[i] > 0x7e) : strchr(set, s[i]) == NULL)
            return false;
    }
    return true;
}

/* An array of f->min .. f->max elements, each an integer in lo .. hi, or
 * (when lo > hi) each a string of 1 .. 256 bytes. */
static bool array_of(const json_t *v, const lp_field_t *f, int64_t lo, int64_t hi)
{
    size_t i;
    const json_t *e;

    if (!json_is_array(v) || (int64_t)json_array_size(v) < f->min ||
        (int64_t)json_array_size(v) > f->max)
        return false;
    json_array_foreach(v, i, e) {
        if (lo <= hi ? !int_in(e, lo, hi) : !str_len_in(e, 1, 256))
            return false;
    }
    return true;
}

static const char name_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

/* True when v is a valid value for field f. */
static bool field_ok(const json_t *v, const lp_field_t *f)
{
    switch (f->type) {
    case LP_FT_ID: return int_in(v, 0, LP_WIRE_ID_MAX);
    case LP_FT_INT: return int_in(v, f->min, f->max);
    case LP_FT_BOOL: return json_is_boolean(v);
    case LP_FT_STR: return str_len_in(v, f->min, f->max);
    case LP_FT_SESSION: return str_of(v, NULL, LP_WIRE_SESSION_ID_MAX);
    case LP_FT_NAME: return str_of(v, name_chars, 64);
    case LP_FT_STREAM:
        return json_is_string(v) && (strcmp(json_string_value(v), "stdout") == 0 ||
                                     strcmp(json_string_value(v), "stderr") == 0);
    case LP_FT_INTS: return array_of(v, f, 1, 65535);
    case LP_FT_IDS: return array_of(v, f, 0, LP_WIRE_ID_MAX);
    case LP_FT_STRS: return array_of(v, f, 1, 0);
    case LP_FT_OBJECT: return json_is_object(v);
    }
    return false;
}

int lp_msg_get_id(const json_t *header, const char *key, int64_t *id)
{
    const json_t *v = json_object_get(header, key);

    if (!int_in(v, 0, LP_WIRE_ID_MAX))
        return LP_WIRE_EFIELD;
    *id = json_integer_value(v);
    return 0;
}

/* Checks id/re as the op's kind requires. */
static int check_kind(const json_t *h, const lp_op_spec_t *s, const char **bad_field)
{
    const char *key = s->kind == LP_KIND_REQUEST ? "id" : "re";
    int64_t id;

    if (s->kind == LP_KIND_EITHER && json_object_get(h, key) == NULL)
        return 0;
    if (lp_msg_get_id(h, key, &id) != 0) {
        *bad_field = key;
        return LP_WIRE_EFIELD;
    }
    return 0;
}

int lp_msg_check(const json_t *header, const uint8_t *payload, size_t len, unsigned dir,
                 unsigned caps, const lp_op_spec_t **spec, const char **bad_field)
{
    const json_t *opv = json_object_get(header, "op");
    const lp_op_spec_t *s;
    int r;

    *bad_field = NULL;
    if (!json_is_string(opv) || (s = lp_op_lookup(json_string_value(opv))) == NULL ||
        (s->dirs & dir) == 0)
        return LP_WIRE_EOP;
    if (s->cap != 0 && (s->cap & caps) == 0)
        return LP_WIRE_ENOTSUP;
    if ((r = check_kind(header, s, bad_field)) != 0)
        return r;
    for (const lp_field_t *f = s->fields; f->name != NULL; f++) {
        const json_t *v = json_object_get(header, f->name);

        if (v == NULL ? f->required : !field_ok(v, f)) {
            *bad_field = f->name;
            return LP_WIRE_EFIELD;
        }
    }
    if (s->payload == LP_PL_NONE && len > 0) {
        *bad_field = "payload";
        return LP_WIRE_EFIELD;
    }
    if (s->payload == LP_PL_TEXT && lp_utf8_check_text(payload, len) != 0)
        return LP_WIRE_ETEXT;
    *spec = s;
    return 0;
}
