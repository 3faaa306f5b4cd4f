#ifndef CHAPAR_CLINUX_H
#define CHAPAR_CLINUX_H
// Linux calls that Swift's Glibc module does not import (epoll, eventfd, accept4),
// behind plain C types: struct epoll_event is packed on x86_64 and imports badly.
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

typedef struct {
    uint32_t events;
    uint64_t token;
} clinux_event;

extern const uint32_t CLINUX_EPOLLIN;
extern const uint32_t CLINUX_EPOLLOUT;
extern const uint32_t CLINUX_EPOLLERR;
extern const uint32_t CLINUX_EPOLLHUP;
extern const uint32_t CLINUX_EPOLLRDHUP;

int clinux_epoll_create(void);
int clinux_epoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int clinux_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token);
int clinux_epoll_remove(int epfd, int fd);
/// Waits like epoll_wait and copies results into `out`; returns the count or -1 with errno.
int clinux_epoll_wait(int epfd, clinux_event *out, int max, int timeout_ms);

/// A non-blocking, close-on-exec eventfd used to wake a loop from another thread.
int clinux_eventfd(void);
int clinux_eventfd_signal(int fd);
int clinux_eventfd_drain(int fd);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC.
int clinux_accept(int fd, struct sockaddr *addr, socklen_t *len);
/// socket() with SOCK_NONBLOCK | SOCK_CLOEXEC when nonblocking != 0, else SOCK_CLOEXEC.
int clinux_socket_tcp(int family, int nonblocking);

/// CRC-32C (Castagnoli) of `count` bytes, continuing from `crc` (0 to start). Uses the
/// SSE4.2 crc32 instruction when the CPU has it (about 10x a table in software; three
/// lanes at once from 1 KiB up), else a table. Here rather than in Swift because Swift
/// cannot reach the instruction.
uint32_t clinux_crc32c(uint32_t crc, const void *data, size_t count);

/// The same, always by table in software: what the fast path is checked against.
uint32_t clinux_crc32c_portable(uint32_t crc, const void *data, size_t count);

/// A non-blocking, close-on-exec UDP socket.
int clinux_socket_udp(int family);

/// Allocates `length` bytes of `fd`'s blocks from `offset` without changing its size
/// (fallocate with FALLOC_FL_KEEP_SIZE); 0, or -1 with errno.
int clinux_preallocate(int fd, off_t offset, off_t length);

/// open(2)'s O_DIRECT flag (Glibc's Swift module leaves it out: it needs _GNU_SOURCE).
extern const int CLINUX_O_DIRECT;

/// Has malloc serve allocations below `mmap_bytes` from its heaps and keep up to
/// `trim_bytes` of freed memory at a heap's top (mallopt M_MMAP_THRESHOLD and
/// M_TRIM_THRESHOLD); 1 when both were set.
int clinux_malloc_keep_freed(int mmap_bytes, int trim_bytes);

/// Names the calling thread (first 15 bytes), for top and debuggers.
void clinux_set_thread_name(const char *name);

#endif
