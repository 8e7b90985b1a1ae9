/* term.h: what the limpet command knows about the terminal: its size,
 * whether to colour, and the user's pager. */
#ifndef LP_CLI_TERM_H
#define LP_CLI_TERM_H

#include <stdbool.h>
#include <stddef.h>

/* Writes all of data to fd (a terminal, pipe or file; not a socket):
 * 0, or -1 when it failed. */
int lp_term_write(int fd, const void *data, size_t len);

/* Rows and columns of the terminal on standard output (24x80 when it is
 * not one); either pointer may be NULL. */
void lp_term_size(int *rows, int *cols);

/* True when output to fd may be coloured: a terminal, NO_COLOR unset or
 * empty, TERM not "dumb". */
bool lp_term_colour(int fd);

/* Shows text through the user's pager ($PAGER, else less, else more) when
 * standard output is a terminal and text is taller than it; else prints
 * it. Ctrl+C in the pager is the pager's, not ours. */
void lp_term_page(const char *text, size_t len);

#endif
