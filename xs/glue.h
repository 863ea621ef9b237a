/* Helpers shared by the .xs files: turning an nv_error into a NativeVNC::Error object or exception. */
#ifndef NATIVEVNC_GLUE_H
#define NATIVEVNC_GLUE_H

#include "nativevnc.h"

/* A new NativeVNC::Error object { kind => ..., message => ... } (the message NULL: "unknown error"). */
SV *nvx_error_sv(pTHX_ int32_t kind, const char *message);

/* Frees err and dies with a NativeVNC::Error object for it. */
void nvx_croak(pTHX_ nv_error *err);

#define NVX_CHECK(call)              \
    do {                             \
        nv_error *nvx_err = NULL;    \
        if ((call) != 0)             \
            nvx_croak(aTHX_ nvx_err);\
    } while (0)

#endif
