/* console_html.h: the console page (console.html), built into the binary
 * by gen_console.py. */
#ifndef LP_HTTP_CONSOLE_HTML_H
#define LP_HTTP_CONSOLE_HTML_H

#include <stddef.h>

extern const unsigned char lp_console_html[];
extern const size_t lp_console_html_len;
/* Its Content-Security-Policy, with the hashes of its inline script and style. */
extern const char lp_console_csp[];

#endif
