/* bootstrap.c: stage 1 of the bootstrap (bootstrap.h). */
#include "context/bootstrap.h"

#include <stdio.h>

#include "wire/wire.h"

int lp_context_stage1(char *out, size_t size, size_t payload_len, bool ready)
{
    int n = snprintf(out, size,
                     "import os,sys,zlib;%sn=%zu;b=b\"\";"
                     "exec(\"while len(b)<n:b+=os.read(0,n-len(b)) or sys.exit(1)\");"
                     "exec(zlib.decompress(b))",
                     ready ? "os.write(2,b\"limpet-ready\\n\");" : "", payload_len);

    return n < 0 || (size_t)n >= size ? LP_WIRE_ELIMIT : n;
}
