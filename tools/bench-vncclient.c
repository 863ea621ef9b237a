/*
 * bench-vncclient: the libvncclient peer of tools/bench-frames. tools/bench-frames compiles it at run time
 * into a temporary directory (cc -O2 tools/bench-vncclient.c -lvncclient); nothing is built in the tree.
 *
 * Connects to a VNC server, offers one encoding, drains what the server sends after the handshake, then
 * requests full-screen non-incremental updates one at a time. A frame counts once the rectangles that
 * libvncclient reported through GotFrameBufferUpdate since the request (pixel rectangles only: the library
 * handles pseudo-encodings without calling it) cover width * height pixels. Between polls it sleeps; a poll
 * handles every message already received (select(2) with a zero timeout, or data in libvncclient's own
 * read buffer).
 *
 * Prints JSON lines on stdout: one {"event":"frame",...} per measured frame and one {"event":"result",...}
 * at the end (CPU time from getrusage(RUSAGE_SELF), TCP payload bytes received from TCP_INFO's
 * tcpi_bytes_received). Errors go to stderr with the last message of libvncclient's log; exit status 1.
 *
 * Usage: bench-vncclient -H HOST -p PORT -e raw|zrle|hextile|tight [-n FRAMES] [-w WARMUP] [-i POLL_US]
 *                        [-t TIMEOUT_S] [-o FINAL_FRAME.ppm]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/tcp.h>
#include <rfb/rfbclient.h>

static char last_log[512];
static uint64_t pixels;
static uint64_t rects;
static uint64_t updates;

/* libvncclient's log and error output, kept (the last line) for the error message. */
static void keep_log(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vsnprintf(last_log, sizeof last_log, format, ap);
    va_end(ap);
    size_t len = strlen(last_log);
    while (len && (last_log[len - 1] == '\n' || last_log[len - 1] == '\r'))
        last_log[--len] = '\0';
}

static void fail(const char *format, ...)
{
    va_list ap;
    fputs("bench-vncclient: ", stderr);
    va_start(ap, format);
    vfprintf(stderr, format, ap);
    va_end(ap);
    if (last_log[0])
        fprintf(stderr, " (libvncclient: %s)", last_log);
    fputc('\n', stderr);
    exit(1);
}

static void got_rectangle(rfbClient *client, int x, int y, int w, int h)
{
    (void)client;
    (void)x;
    (void)y;
    pixels += (uint64_t)w * (uint64_t)h;
    rects++;
}

static void finished_update(rfbClient *client)
{
    (void)client;
    updates++;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct cpu {
    double user, system;
};

static struct cpu cpu_now(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        fail("getrusage: %s", strerror(errno));
    return (struct cpu){ usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6,
                         usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6 };
}

/* TCP payload bytes the socket received since it was opened; -1 if the kernel does not say. */
static long long tcp_bytes_received(int sock)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return -1;
    if (len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
        return -1;
    return (long long)info.tcpi_bytes_received;
}

static void sleep_seconds(double seconds)
{
    struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Handles every server message already received; returns how many. */
static int poll_messages(rfbClient *client)
{
    int handled = 0;
    for (;;) {
        if (client->buffered == 0) {
            int ready = WaitForMessage(client, 0);
            if (ready < 0)
                fail("waiting for the server failed");
            if (ready == 0)
                return handled;
        }
        if (!HandleRFBServerMessage(client))
            fail("the connection broke while receiving a server message");
        handled++;
    }
}

/* One full-screen non-incremental request, polled until its pixels covered the screen. */
static void frame(rfbClient *client, double poll, double timeout)
{
    uint64_t start = pixels, target = start + (uint64_t)client->width * (uint64_t)client->height;
    if (!SendFramebufferUpdateRequest(client, 0, 0, client->width, client->height, FALSE))
        fail("sending a FramebufferUpdateRequest failed");
    double deadline = now() + timeout;
    for (;;) {
        poll_messages(client);
        if (pixels >= target)
            return;
        if (now() > deadline)
            fail("the pixels of a full-screen update did not arrive within %g s (%llu of %d x %d)", timeout,
                 (unsigned long long)(pixels - start), client->width, client->height);
        sleep_seconds(poll);
    }
}

/* The framebuffer as a binary PPM (P6), each pixel decoded with the client's pixel format. */
static void write_ppm(rfbClient *client, const char *path)
{
    FILE *out = fopen(path, "wb");
    if (!out)
        fail("cannot write %s: %s", path, strerror(errno));
    const rfbPixelFormat *f = &client->format;
    if (f->bitsPerPixel != 32)
        fail("cannot write a PPM of %d-bit pixels", f->bitsPerPixel);
    fprintf(out, "P6\n%d %d\n255\n", client->width, client->height);
    const uint32_t *px = (const uint32_t *)client->frameBuffer;
    size_t count = (size_t)client->width * client->height;
    unsigned char *rgb = malloc(count * 3);
    if (!rgb)
        fail("out of memory for a %d x %d PPM", client->width, client->height);
    for (size_t i = 0; i < count; i++) {
        uint32_t p = px[i];
        rgb[3 * i] = (unsigned char)(((p >> f->redShift) & f->redMax) * 255 / f->redMax);
        rgb[3 * i + 1] = (unsigned char)(((p >> f->greenShift) & f->greenMax) * 255 / f->greenMax);
        rgb[3 * i + 2] = (unsigned char)(((p >> f->blueShift) & f->blueMax) * 255 / f->blueMax);
    }
    if (fwrite(rgb, 3, count, out) != count || fclose(out) != 0)
        fail("cannot write %s: %s", path, strerror(errno));
    free(rgb);
}

static long parse_number(const char *text, const char *what, long min)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end || end == text || value < min)
        fail("%s must be a whole number of at least %ld, not '%s'", what, min, text);
    return value;
}

int main(int argc, char **argv)
{
    const char *host = NULL, *encoding = NULL, *ppm = NULL;
    long port = 0, frames = 50, warmup = 2, poll_us = 5000, timeout = 20;
    int opt;
    while ((opt = getopt(argc, argv, "H:p:e:n:w:i:t:o:")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = parse_number(optarg, "-p (port)", 1); break;
        case 'e': encoding = optarg; break;
        case 'n': frames = parse_number(optarg, "-n (frames)", 1); break;
        case 'w': warmup = parse_number(optarg, "-w (warm-up frames)", 0); break;
        case 'i': poll_us = parse_number(optarg, "-i (poll interval, microseconds)", 0); break;
        case 't': timeout = parse_number(optarg, "-t (frame timeout, s)", 1); break;
        case 'o': ppm = optarg; break;
        default: fail("usage: bench-vncclient -H HOST -p PORT -e raw|zrle|hextile|tight [-n FRAMES] "
                      "[-w WARMUP] [-i POLL_US] [-t TIMEOUT_S] [-o FRAME.ppm]");
        }
    }
    if (!host || !port || !encoding || optind != argc)
        fail("-H HOST, -p PORT and -e ENCODING are required, and nothing else");
    if (port > 65535)
        fail("-p (port) must be at most 65535");
    if (strcmp(encoding, "raw") && strcmp(encoding, "zrle") && strcmp(encoding, "hextile") &&
        strcmp(encoding, "tight"))
        fail("unknown encoding '%s' (raw, zrle, hextile, tight)", encoding);

    rfbClientLog = keep_log;
    rfbClientErr = keep_log;
    /* 8 bits per sample, 3 samples, 4 bytes per pixel: 32-bit true colour, as the other clients ask. */
    rfbClient *client = rfbGetClient(8, 3, 4);
    if (!client)
        fail("rfbGetClient failed");
    client->appData.encodingsString = encoding;
    /* Lossless and the server's own compression level: no CompressLevel or QualityLevel pseudo-encodings. */
    client->appData.compressLevel = -1;
    client->appData.enableJPEG = FALSE;
    client->appData.useRemoteCursor = FALSE;
    client->canHandleNewFBSize = TRUE;
    client->connectTimeout = (unsigned)timeout;
    client->readTimeout = (unsigned)timeout;
    client->GotFrameBufferUpdate = got_rectangle;
    client->FinishedFrameBufferUpdate = finished_update;
    free(client->serverHost);
    client->serverHost = strdup(host);
    client->serverPort = (int)port;
    /* rfbInitClient frees the client when it fails. */
    if (!rfbInitClient(client, NULL, NULL))
        fail("connecting to %s:%ld and the RFB handshake failed", host, port);
    double poll = poll_us / 1e6;

    /* The handshake ends with libvncclient's own full request: its answer and anything else the server
     * sends unasked is not a frame. */
    double quiet_until = now() + 0.3, drain_deadline = now() + timeout;
    while (now() < quiet_until) {
        if (poll_messages(client))
            quiet_until = now() + 0.3;
        if (now() > drain_deadline)
            fail("the server did not stop sending within %ld s of the handshake", timeout);
        sleep_seconds(0.02);
    }
    for (long i = 0; i < warmup; i++)
        frame(client, poll, (double)timeout);

    uint64_t pixels_before = pixels, rects_before = rects, updates_before = updates;
    long long bytes_before = tcp_bytes_received(client->sock);
    struct cpu cpu_before = cpu_now();
    double wall_before = now();
    for (long i = 1; i <= frames; i++) {
        uint64_t frame_pixels = pixels, frame_rects = rects;
        long long frame_bytes = tcp_bytes_received(client->sock);
        double frame_start = now();
        frame(client, poll, (double)timeout);
        double frame_wall = now() - frame_start;
        long long bytes = tcp_bytes_received(client->sock);
        printf("{\"event\":\"frame\",\"index\":%ld,\"pixels\":%llu,\"rects\":%llu,\"wire_bytes\":%lld,"
               "\"wall_ms\":%.3f}\n",
               i, (unsigned long long)(pixels - frame_pixels), (unsigned long long)(rects - frame_rects),
               frame_bytes >= 0 && bytes >= 0 ? bytes - frame_bytes : -1, 1000 * frame_wall);
    }
    double wall = now() - wall_before;
    struct cpu cpu_after = cpu_now();
    long long bytes_after = tcp_bytes_received(client->sock);
    uint64_t measured_pixels = pixels - pixels_before, measured_rects = rects - rects_before,
             measured_updates = updates - updates_before;

    /* What the same polling costs for one second without requests. */
    struct cpu idle_before = cpu_now();
    double idle_end = now() + 1;
    while (now() < idle_end) {
        poll_messages(client);
        sleep_seconds(poll);
    }
    struct cpu idle_after = cpu_now();

    if (ppm)
        write_ppm(client, ppm);
    printf("{\"event\":\"result\",\"frames\":%ld,\"warmup\":%ld,\"width\":%d,\"height\":%d,"
           "\"cpu_user_ms\":%.3f,\"cpu_system_ms\":%.3f,\"wall_ms\":%.3f,\"pixels\":%llu,\"rects\":%llu,"
           "\"updates\":%llu,\"wire_bytes\":%lld,\"idle_cpu_ms_per_second\":%.3f,\"ppm\":%s}\n",
           frames, warmup, client->width, client->height, 1000 * (cpu_after.user - cpu_before.user),
           1000 * (cpu_after.system - cpu_before.system), 1000 * wall, (unsigned long long)measured_pixels,
           (unsigned long long)measured_rects, (unsigned long long)measured_updates,
           bytes_before >= 0 && bytes_after >= 0 ? bytes_after - bytes_before : -1,
           1000 * (idle_after.user + idle_after.system - idle_before.user - idle_before.system),
           ppm ? "true" : "false");
    if (fflush(stdout) != 0)
        fail("writing the results failed: %s", strerror(errno));
    rfbClientCleanup(client);
    return 0;
}
