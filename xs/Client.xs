/* Package NativeVNC::Client: one VNC connection of the Rust core (see NativeVNC.pm for the API). */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#include "glue.h"

#include <pthread.h>
#include <signal.h>

static SV *
nvx_opt(pTHX_ HV *hv, const char *key)
{
    SV **v = hv_fetch(hv, key, (I32)strlen(key), 0);
    return v && SvOK(*v) ? *v : NULL;
}

/* The option's seconds as milliseconds, or dflt_ms when it is not given. */
static uint32_t
nvx_ms(pTHX_ HV *hv, const char *key, uint32_t dflt_ms)
{
    SV *v = nvx_opt(aTHX_ hv, key);
    double s;
    if (!v)
        return dflt_ms;
    s = SvNV(v);
    if (s < 0.001)
        s = 0.001;
    if (s > 4000000.0)
        s = 4000000.0;
    return (uint32_t)(s * 1000.0);
}

static HV *
nvx_status_hv(pTHX_ const nv_status *st)
{
    HV *hv = newHV();
    (void)hv_stores(hv, "connected", newSViv(st->connected));
    (void)hv_stores(hv, "rfb_minor", newSViv(st->rfb_minor));
    (void)hv_stores(hv, "absolute", newSViv(st->absolute));
    (void)hv_stores(hv, "scancodes", newSViv(st->scancodes));
    (void)hv_stores(hv, "width", newSVuv(st->width));
    (void)hv_stores(hv, "height", newSVuv(st->height));
    return hv;
}

/* take_damage's sink: a new string of len bytes for each rectangle, kept as [x, y, w, h, $bytes]. */
static uint8_t *
nvx_rect_buffer(void *ctx, uint16_t x, uint16_t y, uint16_t w, uint16_t h, size_t len)
{
    dTHX;
    AV *rects = (AV *)ctx;
    AV *rect = newAV();
    SV *bytes = newSV(len ? len : 1);
    SvPOK_on(bytes);
    SvCUR_set(bytes, len);
    av_push(rect, newSVuv(x));
    av_push(rect, newSVuv(y));
    av_push(rect, newSVuv(w));
    av_push(rect, newSVuv(h));
    av_push(rect, bytes);
    av_push(rects, newRV_noinc((SV *)rect));
    return (uint8_t *)SvPVX(bytes);
}

static void
nvx_log_line(void *ctx, int32_t warning, const char *message, size_t len)
{
    dTHX;
    AV *lines = (AV *)ctx;
    AV *line = newAV();
    av_push(line, newSViv(warning));
    av_push(line, newSVpvn_utf8(message, len, 1));
    av_push(lines, newRV_noinc((SV *)line));
}

/* The connect options of the hash: the core's defaults for what it does not give. The encodings' buffer is
 * freed when the calling XSUB's scope ends. */
static void
nvx_connect_options(pTHX_ HV *opts, nv_connect_options *o)
{
    SV *v;
    int32_t *encodings = NULL;
    nv_connect_defaults(o);
    if ((v = nvx_opt(aTHX_ opts, "host")))
        o->host = SvPVutf8_nolen(v);
    if ((v = nvx_opt(aTHX_ opts, "port")))
        o->port = (uint16_t)SvUV(v);
    if ((v = nvx_opt(aTHX_ opts, "password")))
        o->password = SvPVutf8_nolen(v);
    o->connect_timeout_ms = nvx_ms(aTHX_ opts, "connect_timeout", o->connect_timeout_ms);
    o->io_timeout_ms = nvx_ms(aTHX_ opts, "io_timeout", o->io_timeout_ms);
    if ((v = nvx_opt(aTHX_ opts, "depth")))
        o->depth = (uint8_t)SvUV(v);
    if ((v = nvx_opt(aTHX_ opts, "keep_server_format")))
        o->keep_server_format = SvTRUE(v);
    if ((v = nvx_opt(aTHX_ opts, "shared")))
        o->shared = SvTRUE(v);
    if ((v = nvx_opt(aTHX_ opts, "scancode_keys")))
        o->scancode_keys = SvTRUE(v);
    if ((v = nvx_opt(aTHX_ opts, "webmks_url")))
        o->webmks_url = SvPVutf8_nolen(v);
    if ((v = nvx_opt(aTHX_ opts, "vm")))
        o->vm = SvPVutf8_nolen(v);
    if ((v = nvx_opt(aTHX_ opts, "webmks_password")))
        o->webmks_password = SvPVutf8_nolen(v);
    if ((v = nvx_opt(aTHX_ opts, "ticket_attempts")))
        o->ticket_attempts = (uint32_t)SvUV(v);
    o->ticket_delay_ms = nvx_ms(aTHX_ opts, "ticket_delay", o->ticket_delay_ms);
    if ((v = nvx_opt(aTHX_ opts, "insecure")))
        o->insecure = SvTRUE(v);
    if ((v = nvx_opt(aTHX_ opts, "ca_file")))
        o->ca_file = SvPVutf8_nolen(v);
    if ((v = nvx_opt(aTHX_ opts, "thumbprint")))
        o->thumbprint = SvPVutf8_nolen(v);
    if ((v = nvx_opt(aTHX_ opts, "hosts")))
        o->hosts = SvPVutf8_nolen(v);
    if ((v = nvx_opt(aTHX_ opts, "api")))
        o->api = SvPVutf8_nolen(v);
    v = nvx_opt(aTHX_ opts, "encodings");
    if (v) {
        AV *av;
        SSize_t i, n;
        if (!SvROK(v) || SvTYPE(SvRV(v)) != SVt_PVAV)
            croak("NativeVNC::Client: encodings must be an array reference");
        av = (AV *)SvRV(v);
        n = av_top_index(av) + 1;
        Newx(encodings, n ? n : 1, int32_t);
        SAVEFREEPV(encodings);
        for (i = 0; i < n; i++) {
            SV **e = av_fetch(av, i, 0);
            encodings[i] = e ? (int32_t)SvIV(*e) : 0;
        }
        o->encodings = encodings;
        o->n_encodings = (size_t)n;
    }
}

/* Seconds as milliseconds, from 0 to 4000000 s. */
static uint32_t
nvx_window_ms(double s)
{
    if (!(s > 0))
        return 0;
    if (s > 4000000.0)
        s = 4000000.0;
    return (uint32_t)(s * 1000.0);
}

/* connect_until's callbacks: the Perl code to hear of failures, the failed attempt's log lines, and the
 * exception the code threw (which ends the loop and is thrown again once the core has returned). */
struct nvx_retry {
    SV *on_retry;
    AV *log;
    SV *error;
};

static void
nvx_retry_log(void *ctx, int32_t warning, const char *message, size_t len)
{
    nvx_log_line(((struct nvx_retry *)ctx)->log, warning, message, len);
}

/* Calls on_retry->($error, $failures, \@log) inside an eval: dying ends the loop. */
static int32_t
nvx_retry(void *ctx, uint32_t failures, const nv_error *e)
{
    dTHX;
    dSP;
    struct nvx_retry *r = (struct nvx_retry *)ctx;
    int32_t stop;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    EXTEND(SP, 3);
    PUSHs(sv_2mortal(nvx_error_sv(aTHX_ e->kind, e->message)));
    mPUSHu((UV)failures);
    mPUSHs(newRV_inc((SV *)r->log));
    PUTBACK;
    call_sv(r->on_retry, G_DISCARD | G_EVAL);
    stop = SvTRUE(ERRSV) ? 1 : 0;
    if (stop)
        r->error = newSVsv(ERRSV);
    FREETMPS;
    LEAVE;
    r->log = (AV *)sv_2mortal((SV *)newAV());
    return stop;
}

/* The start of OpenCV 4's cv::Mat, which is the first member of tinycv's Image. Only used after every
 * field has been checked against what tinycv itself reports (see nvx_tinycv_pixels). */
struct nvx_cv_mat {
    int flags;
    int dims;
    int rows;
    int cols;
    unsigned char *data;
    const unsigned char *datastart;
    const unsigned char *dataend;
    const unsigned char *datalimit;
    void *allocator;
    void *u;
    int *size_p;
    size_t *step_p;
    size_t step_buf[2];
};

#define NVX_CV_MAGIC_MASK 0xFFFF0000
#define NVX_CV_MAGIC_VAL 0x42FF0000
#define NVX_CV_TYPE_MASK 0xFFF
#define NVX_CV_8UC3 16
#define NVX_CV_CONTINUOUS (1 << 14)

/* The pixel buffer of a tinycv::Image of width x height, if its cv::Mat is laid out as expected: magic
 * value, 2 dimensions, 8-bit BGR, continuous rows, the size tinycv reports, consistent data pointers and
 * row step. Anything else returns NULL and the caller uses tinycv's own API instead. */
static unsigned char *
nvx_tinycv_pixels(pTHX_ SV *image, UV width, UV height)
{
    const struct nvx_cv_mat *m;
    size_t row;
    if (!SvROK(image) || !sv_derived_from(image, "tinycv::Image") || !SvIOK(SvRV(image)))
        return NULL;
    m = INT2PTR(const struct nvx_cv_mat *, SvIV(SvRV(image)));
    if (!m || width == 0 || height == 0)
        return NULL;
    row = (size_t)width * 3;
    if (((unsigned)m->flags & NVX_CV_MAGIC_MASK) != NVX_CV_MAGIC_VAL || (m->flags & NVX_CV_TYPE_MASK) != NVX_CV_8UC3
        || !(m->flags & NVX_CV_CONTINUOUS) || m->dims != 2 || (UV)m->rows != height || (UV)m->cols != width
        || !m->data || m->datastart != m->data || m->dataend != m->data + row * (size_t)height
        || m->step_p != m->step_buf || m->step_buf[0] != row || m->step_buf[1] != 3)
        return NULL;
    return m->data;
}

/* Runs a call that waits (for an update to arrive or to be drawn) or copies a whole screen with every signal
 * blocked on perl's thread, and restores the mask after: signals that arrive meanwhile stay pending and reach
 * perl's handlers once the call returns. Perl counts signals it has not dispatched yet and dies from within
 * its signal handler once 120 are pending, which a storm of signals reaches within milliseconds: that would
 * unwind out of the core while it holds a lock or draws into the caller's image, or deadlock in malloc when
 * the signal interrupts an allocation (as while take_damage makes the strings of a full screen). The core's
 * own threads block every signal too. Connecting is not covered: a signal's default action (SIGTERM's, say)
 * must not wait for a connection's timeout. */
#define NVX_SIGNALS_DEFERRED(call)                                                                         \
    do {                                                                                                   \
        sigset_t nvx_all_, nvx_old_;                                                                       \
        sigfillset(&nvx_all_);                                                                             \
        pthread_sigmask(SIG_BLOCK, &nvx_all_, &nvx_old_);                                                  \
        call;                                                                                              \
        pthread_sigmask(SIG_SETMASK, &nvx_old_, NULL);                                                     \
    } while (0)

/* Seconds from perl as milliseconds for the core: negative is 0, more than about 46 days is 46 days. */
static uint32_t
nvx_timeout_ms(double seconds)
{
    if (!(seconds > 0))
        return 0;
    if (seconds > 4000000.0)
        return 4000000000u;
    return (uint32_t)(seconds * 1000.0);
}

static void
nvx_count(void *ctx, int32_t encoding, uint64_t count)
{
    dTHX;
    char key[16];
    int len = snprintf(key, sizeof key, "%d", (int)encoding);
    (void)hv_store((HV *)ctx, key, len, newSVuv((UV)count), 0);
}

MODULE = NativeVNC::Client    PACKAGE = NativeVNC::Client

PROTOTYPES: DISABLE

nv_client *
new(const char *class)
  CODE:
    PERL_UNUSED_VAR(class);
    RETVAL = nv_client_new();
    if (!RETVAL)
        croak("NativeVNC::Client: out of memory");
  OUTPUT:
    RETVAL

void
DESTROY(SV *self)
  CODE:
    if (SvROK(self)) {
        nv_client_free(INT2PTR(nv_client *, SvIV(SvRV(self))));
        sv_setiv(SvRV(self), 0);
    }

SV *
connect(nv_client *c, HV *opts)
  PREINIT:
    nv_connect_options o;
    nv_status st;
  CODE:
    nvx_connect_options(aTHX_ opts, &o);
    NVX_CHECK(nv_client_connect(c, &o, &st, &nvx_err));
    RETVAL = newRV_noinc((SV *)nvx_status_hv(aTHX_ &st));
  OUTPUT:
    RETVAL

SV *
connect_until(nv_client *c, HV *opts, double window, double pause, SV *on_retry)
  PREINIT:
    nv_connect_options o;
    nv_status st;
    nv_error *err = NULL;
    struct nvx_retry r;
  CODE:
    if (!SvROK(on_retry) || SvTYPE(SvRV(on_retry)) != SVt_PVCV)
        croak("NativeVNC::Client::connect_until: on_retry must be a code reference");
    nvx_connect_options(aTHX_ opts, &o);
    r.on_retry = on_retry;
    r.log = (AV *)sv_2mortal((SV *)newAV());
    r.error = NULL;
    if (nv_client_connect_until(c, &o, nvx_window_ms(window), nvx_window_ms(pause), nvx_retry_log, nvx_retry, &r, &st,
                                &err) != 0) {
        if (r.error) {
            nv_error_free(err);
            croak_sv(sv_2mortal(r.error));
        }
        nvx_croak(aTHX_ err);
    }
    RETVAL = newRV_noinc((SV *)nvx_status_hv(aTHX_ &st));
  OUTPUT:
    RETVAL

int
in_this_process(nv_client *c)
  CODE:
    RETVAL = nv_client_in_this_process(c);
  OUTPUT:
    RETVAL

void
disconnect(nv_client *c)
  CODE:
    nv_client_disconnect(c);

SV *
status(nv_client *c)
  PREINIT:
    nv_status st;
  CODE:
    if (nv_client_status(c, &st) != 0)
        croak("NativeVNC::Client::status failed");
    RETVAL = newRV_noinc((SV *)nvx_status_hv(aTHX_ &st));
  OUTPUT:
    RETVAL

SV *
counters(nv_client *c)
  PREINIT:
    nv_counters n;
    HV *hv;
  CODE:
    if (nv_client_counters(c, &n) != 0)
        croak("NativeVNC::Client::counters failed");
    hv = newHV();
    (void)hv_stores(hv, "messages", newSVuv((UV)n.messages));
    (void)hv_stores(hv, "updates", newSVuv((UV)n.updates));
    (void)hv_stores(hv, "pixel_updates", newSVuv((UV)n.pixel_updates));
    (void)hv_stores(hv, "pixels", newSVuv((UV)n.pixels));
    RETVAL = newRV_noinc((SV *)hv);
  OUTPUT:
    RETVAL

void
poll(nv_client *c)
  PREINIT:
    uint64_t updates = 0, messages = 0;
    int32_t pending = 0;
  PPCODE:
    NVX_CHECK(nv_client_poll(c, &updates, &messages, &pending, &nvx_err));
    EXTEND(SP, 3);
    mPUSHu((UV)updates);
    mPUSHu((UV)messages);
    mPUSHi((IV)pending);

int
wait_update(nv_client *c, double timeout)
  PREINIT:
    nv_error *err = NULL;
  CODE:
    NVX_SIGNALS_DEFERRED(RETVAL = nv_client_wait_update(c, nvx_timeout_ms(timeout), &err));
    if (RETVAL < 0)
        nvx_croak(aTHX_ err);
  OUTPUT:
    RETVAL

void
take_damage(nv_client *c)
  PREINIT:
    AV *rects;
    nv_error *err = NULL;
    int64_t n;
    SSize_t i;
  PPCODE:
    rects = (AV *)sv_2mortal((SV *)newAV());
    NVX_SIGNALS_DEFERRED(n = nv_client_take_damage(c, nvx_rect_buffer, rects, &err));
    if (n < 0)
        nvx_croak(aTHX_ err);
    EXTEND(SP, av_top_index(rects) + 1);
    for (i = 0; i <= av_top_index(rects); i++)
        PUSHs(sv_2mortal(SvREFCNT_inc(*av_fetch(rects, i, 0))));

IV
draw_tinycv(nv_client *c, SV *image, UV width, UV height, double timeout)
  PREINIT:
    unsigned char *pixels;
    nv_error *err = NULL;
    int64_t n;
  CODE:
    if (width > 65535 || height > 65535)
        croak("NativeVNC::Client::draw_tinycv: %" UVuf "x%" UVuf " is too large", width, height);
    pixels = nvx_tinycv_pixels(aTHX_ image, width, height);
    if (!pixels) {
        RETVAL = -1;
    }
    else {
        NVX_SIGNALS_DEFERRED(n = nv_client_draw_bgr(c, pixels, (size_t)width * 3 * (size_t)height, (uint16_t)width,
                                                    (uint16_t)height, (size_t)width * 3, nvx_timeout_ms(timeout), &err));
        if (n < 0)
            nvx_croak(aTHX_ err);
        RETVAL = (IV)n;
    }
  OUTPUT:
    RETVAL

IV
draw_image(nv_client *c, nv_image *img, double timeout)
  PREINIT:
    nv_error *err = NULL;
    int64_t n;
  CODE:
    NVX_SIGNALS_DEFERRED(n = nv_client_draw_image(c, img, nvx_timeout_ms(timeout), &err));
    if (n < 0)
        nvx_croak(aTHX_ err);
    RETVAL = (IV)n;
  OUTPUT:
    RETVAL

IV
update(nv_client *c, double timeout)
  PREINIT:
    nv_error *err = NULL;
    int64_t n;
  CODE:
    NVX_SIGNALS_DEFERRED(n = nv_client_update(c, nvx_timeout_ms(timeout), &err));
    if (n < 0)
        nvx_croak(aTHX_ err);
    RETVAL = (IV)n;
  OUTPUT:
    RETVAL

void
key(nv_client *c, UV keysym, int down)
  CODE:
    NVX_CHECK(nv_client_key(c, (uint32_t)keysym, down, &nvx_err));

void
pointer(nv_client *c, int buttons, IV x, IV y)
  CODE:
    NVX_CHECK(nv_client_pointer(c, (uint8_t)buttons, (int64_t)x, (int64_t)y, &nvx_err));

void
request_update(nv_client *c, int incremental, UV x = 0, UV y = 0, UV w = 0, UV h = 0)
  CODE:
    NVX_CHECK(nv_client_request_update(c, incremental, (uint16_t)x, (uint16_t)y, (uint16_t)w, (uint16_t)h, &nvx_err));

void
take_log(nv_client *c)
  PREINIT:
    AV *lines;
    SSize_t i;
  PPCODE:
    lines = (AV *)sv_2mortal((SV *)newAV());
    nv_client_take_log(c, nvx_log_line, lines);
    EXTEND(SP, av_top_index(lines) + 1);
    for (i = 0; i <= av_top_index(lines); i++)
        PUSHs(sv_2mortal(SvREFCNT_inc(*av_fetch(lines, i, 0))));

SV *
encoding_counts(nv_client *c)
  PREINIT:
    HV *counts;
  CODE:
    counts = newHV();
    nv_client_encoding_counts(c, nvx_count, counts);
    RETVAL = newRV_noinc((SV *)counts);
  OUTPUT:
    RETVAL

nv_image *
snapshot(nv_client *c)
  PREINIT:
    nv_error *err = NULL;
  CODE:
    NVX_SIGNALS_DEFERRED(RETVAL = nv_client_snapshot(c, &err));
    if (!RETVAL)
        nvx_croak(aTHX_ err);
  OUTPUT:
    RETVAL
