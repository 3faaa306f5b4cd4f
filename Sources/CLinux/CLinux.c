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
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t value = crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        value = __builtin_ia32_crc32di(value, word);
        p += 8;
        n -= 8;
    }
    uint32_t small = (uint32_t)value;
    while (n--) small = __builtin_ia32_crc32qi(small, *p++);
    return small;
}
#endif

uint32_t clinux_crc32c(uint32_t crc, const void *data, size_t count) {
    const uint8_t *p = data;
    uint32_t value = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~crc32c_hardware(value, p, count);
#endif
    return ~crc32c_software(value, p, count);
}

int clinux_socket_udp(int family) { return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int clinux_malloc_keep_freed(int mmap_bytes, int trim_bytes) {
    return mallopt(M_MMAP_THRESHOLD, mmap_bytes) && mallopt(M_TRIM_THRESHOLD, trim_bytes);
}

int clinux_preallocate(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length);
}
