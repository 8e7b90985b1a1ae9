/* fuzz_handshake.c: libFuzzer target for both sides of the handshake.
 *
 * The input is what a client sends, delivered in pieces whose sizes come
 * from the input itself. Whatever the server answers (acceptance or
 * refusal) must be understood by our own client. The same bytes are also
 * fed to the client side as if a server had sent them. */
#include <stdlib.h>
#include <string.h>

#include "wire/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The server's answer in out must parse at a client as verdict r. */
static void client_understands(lp_buf_t *out, int r)
{
    lp_hs_t hs = {0};
    lp_welcome_t w;
    int c = lp_hs_client_read(&hs, out, &w);

    if (c != r)
        abort();
    lp_welcome_clear(&w);
}

static void server_side(const uint8_t *data, size_t size)
{
    static const char *const caps[] = {"repl", NULL};
    lp_buf_t *in = lp_buf_new(size + 1), *out = lp_buf_new(1u << 20);
    json_t *server = json_pack("{s:s}", "name", "fuzz");
    lp_hs_t hs = {0};
    lp_hello_t hello;
    const char *field;
    size_t off = 0, step = size > 0 ? (size_t)(data[0] % 17) + 1 : 1;
    int r = LP_WIRE_EAGAIN;

    while (r == LP_WIRE_EAGAIN && off < size) {
        size_t n = size - off < step ? size - off : step;

        if (lp_buf_put(in, data + off, n) != 0)
            abort();
        off += n;
        r = lp_hs_server_read(&hs, in, &hello, &field);
    }
    if (r == 0) {
        if (lp_hs_server_accept(out, &hello, server, caps, LP_WIRE_PAYLOAD_MIN, "1") != 0)
            abort();
        /* our client says hello with id 0 and takes no answer to another id */
        client_understands(out, hello.id == 0 ? 0 : LP_WIRE_EFIELD);
    } else if (r != LP_WIRE_EAGAIN) {
        if (lp_hs_server_refuse(out, r, &hello, NULL, field) != 0)
            abort();
        client_understands(out, r);
    }
    json_decref(server);
    lp_buf_free(in);
    lp_buf_free(out);
}

static void client_side(const uint8_t *data, size_t size)
{
    lp_buf_t *in = lp_buf_new(size + 1);
    lp_hs_t hs = {0};
    lp_welcome_t w;

    if (lp_buf_put(in, data, size) != 0)
        abort();
    if (lp_hs_client_read(&hs, in, &w) == 0 && (w.server == NULL || w.caps == NULL))
        abort();
    lp_welcome_clear(&w);
    lp_buf_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    server_side(data, size);
    client_side(data, size);
    return 0;
}
