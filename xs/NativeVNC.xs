/* Package NativeVNC: boots the other packages' XS code and provides the key-name and chord functions. */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#include "glue.h"

XS_EXTERNAL(boot_NativeVNC__Client);
XS_EXTERNAL(boot_NativeVNC__Image);

/* Runs another package's boot function, as XSLoader would, discarding what it leaves on the stack. */
static void
nvx_boot(pTHX_ XSUBADDR_t boot, CV *cv, SV **mark)
{
    dSP;
    PUSHMARK(mark);
    boot(aTHX_ cv);
    PUTBACK;
}

SV *
nvx_error_sv(pTHX_ int32_t kind, const char *message)
{
    HV *hv = newHV();
    (void)hv_stores(hv, "kind", newSVpv(nv_error_kind_name(kind), 0));
    (void)hv_stores(hv, "message", newSVpv(message ? message : "unknown error", 0));
    return sv_bless(newRV_noinc((SV *)hv), gv_stashpvs("NativeVNC::Error", GV_ADD));
}

void
nvx_croak(pTHX_ nv_error *err)
{
    SV *e = nvx_error_sv(aTHX_ err ? err->kind : NV_ERROR_INTERNAL, err ? err->message : NULL);
    nv_error_free(err);
    croak_sv(sv_2mortal(e));
}

/* key_map's callback: name => keysym, or name => [keysyms] for shifted keys. */
static void
nvx_key_map_entry(void *ctx, const char *name, size_t len, const uint32_t *keysyms, size_t n)
{
    dTHX;
    HV *map = (HV *)ctx;
    SV *value;
    if (n == 1) {
        value = newSVuv(keysyms[0]);
    }
    else {
        AV *av = newAV();
        size_t i;
        for (i = 0; i < n; i++)
            av_push(av, newSVuv(keysyms[i]));
        value = newRV_noinc((SV *)av);
    }
    (void)hv_store(map, name, (I32)len, value, 0);
}

/* vsphere_about's callback: key => value. */
static void
nvx_pair(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len)
{
    dTHX;
    (void)hv_store((HV *)ctx, key, (I32)key_len, newSVpvn_utf8(value, value_len, 1), 0);
}

MODULE = NativeVNC    PACKAGE = NativeVNC

PROTOTYPES: DISABLE

BOOT:
    nvx_boot(aTHX_ boot_NativeVNC__Client, cv, mark);
    nvx_boot(aTHX_ boot_NativeVNC__Image, cv, mark);

void
key_chord(SV *keys)
  PREINIT:
    STRLEN len;
    const char *s;
    uint32_t syms[64];
    size_t n = 0, i;
  PPCODE:
    s = SvPVutf8(keys, len);
    NVX_CHECK(nv_key_chord(s, len, syms, 64, &n, &nvx_err));
    EXTEND(SP, (SSize_t)n);
    for (i = 0; i < n; i++)
        mPUSHu(syms[i]);

void
chord_timing(double key_time)
  PREINIT:
    uint64_t hold = 0, after_release = 0;
  PPCODE:
    if (!(key_time > 0))
        key_time = 0;
    if (key_time > 4000000.0)
        key_time = 4000000.0;
    nv_chord_timing((uint64_t)(key_time * 1e6 + 0.5), &hold, &after_release);
    EXTEND(SP, 2);
    mPUSHn(hold / 1e6);
    mPUSHn(after_release / 1e6);

void
default_encodings()
  PREINIT:
    int32_t list[64];
    size_t n, i;
  PPCODE:
    n = nv_default_encodings(list, 64);
    if (n > 64)
        n = 64;
    EXTEND(SP, (SSize_t)n);
    for (i = 0; i < n; i++)
        mPUSHi(list[i]);

SV *
connect_defaults()
  PREINIT:
    nv_connect_options o;
    HV *d;
  CODE:
    nv_connect_defaults(&o);
    d = newHV();
    (void)hv_stores(d, "host", newSVpv(o.host, 0));
    (void)hv_stores(d, "port", newSVuv(o.port));
    (void)hv_stores(d, "connect_timeout", newSVnv(o.connect_timeout_ms / 1000.0));
    (void)hv_stores(d, "io_timeout", newSVnv(o.io_timeout_ms / 1000.0));
    (void)hv_stores(d, "shared", newSVuv(o.shared));
    (void)hv_stores(d, "scancode_keys", newSVuv(o.scancode_keys));
    (void)hv_stores(d, "ticket_attempts", newSVuv(o.ticket_attempts));
    (void)hv_stores(d, "ticket_delay", newSVnv(o.ticket_delay_ms / 1000.0));
    RETVAL = newRV_noinc((SV *)d);
  OUTPUT:
    RETVAL

SV *
key_map()
  PREINIT:
    HV *map;
  CODE:
    map = newHV();
    nv_key_map(nvx_key_map_entry, map);
    RETVAL = newRV_noinc((SV *)map);
  OUTPUT:
    RETVAL

SV *
vsphere_about(const char *authority, double timeout)
  PREINIT:
    HV *about;
    nv_error *err = NULL;
  CODE:
    about = newHV();
    if (nv_vsphere_about(authority, (uint32_t)(timeout > 0 ? timeout * 1000 : 0), nvx_pair, about, &err) != 0) {
        SvREFCNT_dec((SV *)about);
        nvx_croak(aTHX_ err);
    }
    RETVAL = newRV_noinc((SV *)about);
  OUTPUT:
    RETVAL
