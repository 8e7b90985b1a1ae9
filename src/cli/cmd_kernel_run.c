/* cmd_kernel_run.c: TEMPORARY placeholder for `limpet kernel run`, so
 * install/list/remove and `limpet jupyter` build and are tested before the
 * kernel (src/jupyter/kernel.c, loop.c; issue 13) lands. The kernel's
 * author replaces this whole file with the real lp_kernel_run_cmd. */
#include <stdio.h>

#include "cli/cli.h"

int lp_kernel_run_cmd(int argc, char **argv)
{
    fputs("limpet: kernel run: not built yet\n", stderr);
    return LP_EXIT_FAILURE;
}
