/* SPDX-License-Identifier: MIT */
/* Error detail: the one place errors are born (see err.h). */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cp_err_set(cp_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *cp_err_name(int code)
{
    switch (code) {
    case CP_OK: return "CP_OK";
    case CP_ENOTFOUND: return "CP_ENOTFOUND";
    case CP_ECONDITION: return "CP_ECONDITION";
    case CP_EAGAIN: return "CP_EAGAIN";
    case CP_EINVAL: return "CP_EINVAL";
    case CP_ECORRUPT: return "CP_ECORRUPT";
    case CP_ETXN: return "CP_ETXN";
    case CP_EEXIST: return "CP_EEXIST";
    case CP_ETOOBIG: return "CP_ETOOBIG";
    case CP_ECLOSED: return "CP_ECLOSED";
    case CP_EEXPIRED: return "CP_EEXPIRED";
    case CP_EINUSE: return "CP_EINUSE";
    case CP_ELIMIT: return "CP_ELIMIT";
    case CP_RETRY: return "CP_RETRY";
    case CP_EFAIL: return "CP_EFAIL";
    default: break;
    }
    if (code < 0 && code > -1000) {
        static _Thread_local char buf[64];
        snprintf(buf, sizeof(buf), "%s", strerrorname_np(-code) ? strerrorname_np(-code) : "E?");
        return buf;
    }
    return "CP_E?";
}
