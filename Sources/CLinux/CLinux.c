#include "CLinux.h"
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

const uint32_t CLINUX_EPOLLIN = EPOLLIN;
const uint32_t CLINUX_EPOLLOUT = EPOLLOUT;
const uint32_t CLINUX_EPOLLERR = EPOLLERR;
const uint32_t CLINUX_EPOLLHUP = EPOLLHUP;
const uint32_t CLINUX_EPOLLRDHUP = EPOLLRDHUP;
const int CLINUX_O_DIRECT = O_DIRECT;

int clinux_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int control(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

int clinux_epoll_add(int epfd, int fd, uint32_t events, uint64_t token) {
    return control(epfd, EPOLL_CTL_ADD, fd, events, token);
}

int clinux_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token) {
    return control(epfd, EPOLL_CTL_MOD, fd, events, token);
}

int clinux_epoll_remove(int epfd, int fd) {
    struct epoll_event ev = {0};
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

int clinux_epoll_wait(int epfd, clinux_event *out, int max, int timeout_ms) {
    struct epoll_event buffer[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, buffer, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].events = buffer[i].events;
        out[i].token = buffer[i].data.u64;
    }
    return n;
}

int clinux_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int clinux_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    // EAGAIN means the counter is saturated: the loop is already due to wake.
    return (n == sizeof one || errno == EAGAIN) ? 0 : -1;
}

int clinux_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t n = read(fd, &value, sizeof value);
    return (n == sizeof value || errno == EAGAIN) ? 0 : -1;
}

int clinux_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int clinux_socket_tcp(int family, int nonblocking) {
    int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    return socket(family, type, 0);
}

void clinux_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        crc32c_table[i] = crc;
    }
}

static uint32_t crc32c_software(uint32_t crc, const uint8_t *p, size_t n) {
    pthread_once(&crc32c_once, crc32c_init);
    while (n--) crc = crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
/* The crc32 instruction takes 3 cycles to produce its result but can start one every
 * cycle: fed one dependent chain it runs at a third of its speed. Long buffers are cut into
 * three lanes checksummed side by side, each from 0, then joined: CRC arithmetic is linear,
 * so the register after lane A then lane B is (A's register moved past as many zero bytes
 * as B holds) xor B's register. Moving a register past a fixed count of zeros is itself
 * linear in its 32 bits, hence the four 256-entry tables per lane size. */
enum { LANE_SHORT = 336, LANE_LONG = 4096 };
static uint32_t crc32c_past_short[4][256];
static uint32_t crc32c_past_long[4][256];
static int crc32c_has_sse42;

__attribute__((target("sse4.2")))
static uint32_t crc32c_past_zeros(uint32_t crc, size_t count) {
    uint64_t value = crc;
    for (size_t i = 0; i < count; i += 8) value = __builtin_ia32_crc32di(value, 0);
    return (uint32_t)value;
}

__attribute__((constructor))
static void crc32c_hardware_init(void) {
    __builtin_cpu_init();
    crc32c_has_sse42 = __builtin_cpu_supports("sse4.2");
    if (!crc32c_has_sse42) return;
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            crc32c_past_short[k][b] = crc32c_past_zeros(b << (8 * k), LANE_SHORT);
            crc32c_past_long[k][b] = crc32c_past_zeros(b << (8 * k), LANE_LONG);
        }
    }
}

static inline uint32_t crc32c_past(const uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xFF] ^ table[1][(crc >> 8) & 0xFF] ^ table[2][(crc >> 16) & 0xFF] ^ table[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static inline uint64_t crc32c_word(uint64_t crc, const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return __builtin_ia32_crc32di(crc, word);
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_lanes(uint32_t crc, const uint8_t **cursor, size_t *left, size_t lane,
                             const uint32_t past[4][256]) {
    const uint8_t *p = *cursor;
    size_t n = *left;
    while (n >= 3 * lane) {
        uint64_t a = crc, b = 0, c = 0;
        for (const uint8_t *end = p + lane; p < end; p += 8) {
            a = crc32c_word(a, p);
            b = crc32c_word(b, p + lane);
            c = crc32c_word(c, p + 2 * lane);
        }
        crc = crc32c_past(past, crc32c_past(past, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
        p += 2 * lane;
        n -= 3 * lane;
    }
    *cursor = p;
    *left = n;
    return crc;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const uint8_t *p, size_t n) {
    crc = crc32c_lanes(crc, &p, &n, LANE_LONG, crc32c_past_long);
    crc = crc32c_lanes(crc, &p, &n, LANE_SHORT, crc32c_past_short);
    uint64_t value = crc;
    for (; n >= 8; p += 8, n -= 8) value = crc32c_word(value, p);
    uint32_t small = (uint32_t)value;
    while (n--) small = __builtin_ia32_crc32qi(small, *p++);
    return small;
}
#endif

uint32_t clinux_crc32c(uint32_t crc, const void *data, size_t count) {
    const uint8_t *p = data;
    uint32_t value = ~crc;
#if defined(__x86_64__)
    if (crc32c_has_sse42) return ~crc32c_hardware(value, p, count);
#endif
    return ~crc32c_software(value, p, count);
}

uint32_t clinux_crc32c_portable(uint32_t crc, const void *data, size_t count) {
    return ~crc32c_software(~crc, data, count);
}

int clinux_socket_udp(int family) { return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int clinux_malloc_keep_freed(int mmap_bytes, int trim_bytes) {
    return mallopt(M_MMAP_THRESHOLD, mmap_bytes) && mallopt(M_TRIM_THRESHOLD, trim_bytes);
}

int clinux_preallocate(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length);
}
