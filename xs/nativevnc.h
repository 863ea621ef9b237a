/* The C ABI of the Rust core (rust/nativevnc/src/ffi/). Functions returning int return 0 on success
 * and -1 on failure with *err set; free it with nv_error_free. */
#ifndef NATIVEVNC_H
#define NATIVEVNC_H

#include <stddef.h>
#include <stdint.h>

typedef struct nv_client nv_client;
typedef struct nv_image nv_image;

/* The kinds of nv_error; nv_error_kind_name gives their names (the test suite checks both against Rust). */
enum {
    NV_ERROR_CONNECT = 1,
    NV_ERROR_AUTH = 2,
    NV_ERROR_PROTOCOL = 3,
    NV_ERROR_TIMEOUT = 4,
    NV_ERROR_USAGE = 5,
    NV_ERROR_INTERNAL = 6,
    NV_ERROR_SETUP = 7
};

typedef struct {
    int32_t kind; /* an NV_ERROR_* */
    char *message;
} nv_error;

typedef struct {
    const char *host;
    uint16_t port;
    const char *password;
    uint32_t connect_timeout_ms;
    uint32_t io_timeout_ms;
    const int32_t *encodings;
    size_t n_encodings;
    uint8_t depth;
    uint8_t keep_server_format;
    uint8_t shared;
    uint8_t scancode_keys;
    const char *webmks_url;
    const char *vm;
    const char *webmks_password;
    uint32_t ticket_attempts;
    uint32_t ticket_delay_ms;
    uint8_t insecure;
    const char *ca_file;
    const char *thumbprint;
    const char *hosts;
    const char *api;
} nv_connect_options; /* fields as in NativeVNC::Client->connect, units in their names */

typedef struct {
    uint8_t connected;
    uint8_t rfb_minor;
    uint8_t absolute;
    uint8_t scancodes;
    uint16_t width;
    uint16_t height;
} nv_status;

/* What the current connection received so far. */
typedef struct {
    uint64_t messages;      /* server messages started */
    uint64_t updates;       /* FramebufferUpdate messages completed */
    uint64_t pixel_updates; /* completed updates that carried pixels */
    uint64_t pixels;        /* pixels of the complete pixel rectangles */
} nv_counters;

typedef uint8_t *(*nv_pixel_sink_fn)(void *ctx, uint16_t x, uint16_t y, uint16_t w, uint16_t h, size_t len);
typedef void (*nv_log_fn)(void *ctx, int32_t warning, const char *message, size_t len);

void nv_error_free(nv_error *e);
const char *nv_error_kind_name(int32_t kind);

/* Fills *out with every option's default (localhost:5900, timeouts, ticket attempts and delay, ...). */
void nv_connect_defaults(nv_connect_options *out);

nv_client *nv_client_new(void);
void nv_client_free(nv_client *c);
int nv_client_connect(nv_client *c, const nv_connect_options *o, nv_status *out, nv_error **err);
/* Hears of a failed attempt nv_client_connect_until will try again: the failures so far and the error (valid
 * for the call). Returns 0 to go on, anything else to give up with that error. */
typedef int32_t (*nv_retry_fn)(void *ctx, uint32_t failures, const nv_error *e);
/* nv_client_connect, tried again every pause_ms while attempts are refused or time out, until window_ms have
 * passed (each attempt has the whole connect timeout). Before each new attempt log_fn gets what the failed one
 * logged, then retry_fn the failure; neither may use the client. */
int nv_client_connect_until(nv_client *c, const nv_connect_options *o, uint32_t window_ms, uint32_t pause_ms,
                            nv_log_fn log_fn, nv_retry_fn retry_fn, void *ctx, nv_status *out, nv_error **err);
/* 1 if this process created the client; 0 in a child forked later, where only disconnect and free may be used. */
int nv_client_in_this_process(nv_client *c);
void nv_client_disconnect(nv_client *c);
int nv_client_status(nv_client *c, nv_status *out);
int nv_client_counters(nv_client *c, nv_counters *out);
int nv_client_poll(nv_client *c, uint64_t *updates, uint64_t *messages, int32_t *pending, nv_error **err);
int nv_client_wait_update(nv_client *c, uint32_t timeout_ms, nv_error **err);
int64_t nv_client_take_damage(nv_client *c, nv_pixel_sink_fn sink, void *ctx, nv_error **err);
/* Draws the updates whose pixels arrived straight into the caller's B,G,R image (rows stride bytes apart), each
 * update whole, waiting up to timeout_ms for the rest of one; returns the updates completed, or -1. After an
 * error other than a wrong size the image may hold part of an update: do not show it. */
int64_t nv_client_draw_bgr(nv_client *c, uint8_t *data, size_t len, uint16_t width, uint16_t height, size_t stride,
                           uint32_t timeout_ms, nv_error **err);
int64_t nv_client_draw_image(nv_client *c, nv_image *img, uint32_t timeout_ms, nv_error **err);
/* The same onto the client's own screen (what take_damage and snapshot read). */
int64_t nv_client_update(nv_client *c, uint32_t timeout_ms, nv_error **err);
int nv_client_key(nv_client *c, uint32_t keysym, int32_t down, nv_error **err);
int nv_client_pointer(nv_client *c, uint8_t buttons, int64_t x, int64_t y, nv_error **err);
int nv_client_request_update(nv_client *c, int32_t incremental, uint16_t x, uint16_t y, uint16_t w, uint16_t h,
                             nv_error **err);
void nv_client_take_log(nv_client *c, nv_log_fn f, void *ctx);
typedef void (*nv_count_fn)(void *ctx, int32_t encoding, uint64_t count);
void nv_client_encoding_counts(nv_client *c, nv_count_fn f, void *ctx);
nv_image *nv_client_snapshot(nv_client *c, nv_error **err);

typedef void (*nv_key_map_fn)(void *ctx, const char *name, size_t len, const uint32_t *keysyms, size_t n);

size_t nv_default_encodings(int32_t *out, size_t cap);
void nv_key_map(nv_key_map_fn f, void *ctx);
int nv_key_chord(const char *keys, size_t len, uint32_t *out, size_t cap, size_t *n, nv_error **err);
/* How long each key of a chord is held and the pause after each release, for a key taking key_time_us. */
void nv_chord_timing(uint64_t key_time_us, uint64_t *hold_us, uint64_t *after_release_us);

typedef void (*nv_pair_fn)(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len);
int nv_vsphere_about(const char *authority, uint32_t timeout_ms, nv_pair_fn f, void *ctx, nv_error **err);

nv_image *nv_image_new(uint32_t width, uint32_t height, nv_error **err);
void nv_image_free(nv_image *img);
void nv_image_size(nv_image *img, uint32_t *w, uint32_t *h);
int nv_image_blit(nv_image *img, uint16_t x, uint16_t y, uint16_t w, uint16_t h, const uint8_t *data, size_t len,
                  nv_error **err);
int64_t nv_image_pixel(nv_image *img, uint32_t x, uint32_t y);
int nv_image_write(nv_image *img, const char *path, nv_error **err);

#endif
