/* bootstrap.c: stage 1 of the bootstrap (bootstrap.h). */
#include "context/bootstrap.h"

/* Says which bytecode it runs (cache tag and magic number) on stdout, reads a
 * 9-byte header (kind, length) and that many bytes from fd 0, and runs them:
 * a marshalled code object ('c') or source ('s'), zlib-compressed. Python 3.6
 * syntax; only characters that need no quoting inside single quotes. */
static const char stage1[] =
    "import os,sys,zlib,marshal;"
    "os.write(1,(\"limpet-stage1 %s %s\\n\"%(sys.implementation.cache_tag,getattr(sys.modules"
    ".get(\"_frozen_importlib_external\"),\"MAGIC_NUMBER\",b\"\").hex())).encode());"
    "L=\"while len(b)<n:b+=os.read(0,n-len(b)) or sys.exit(1)\";"
    "n=9;b=b\"\";exec(L);k=b[:1];n=int(b[1:]);b=b\"\";exec(L);b=zlib.decompress(b);"
    "exec(marshal.loads(b) if k==b\"c\" else b)";

const char *lp_context_stage1(void)
{
    return stage1;
}
