// What one append + fdatasync costs on the disk under DIR, by how the file's blocks were
// prepared: the figures behind "On a slow disk" in BENCHMARKS.md. Run by Tools/disk-sync-probe.
//   disk-sync DIR DEVICE MODE BYTES COUNT WRITERS
// MODE: grow (plain file), keep-size (fallocate KEEP_SIZE ahead, as the entry log does),
// sized (fallocate setting the size), written (zeros written and synced first), filling
// (written, while another thread writes zeros into a next file as fast as the appends
// consume them: what preparing segments ahead costs).
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static const char *dir, *device, *mode;
static size_t bytes;
static int count;
// Every writer prepared its file: the device's count is read between the two waits.
static pthread_barrier_t prepared, counted;
// What the writers appended and the filler wrote so far (it keeps up, no further), and
// whether the writers are still at it. The device's count includes the filler's writes.
static _Atomic long appended, filled;
static _Atomic int writing;

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// Device writes completed so far (/proc/diskstats field 8).
static long device_writes(void) {
    FILE *f = fopen("/proc/diskstats", "r");
    char line[512], name[64];
    long writes = -1, v[8];
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%*d %*d %63s %ld %ld %ld %ld %ld", name, &v[0], &v[1], &v[2], &v[3], &v[4]) == 6 && !strcmp(name, device)) writes = v[4];
    }
    if (f) fclose(f);
    return writes;
}

static void *writer(void *arg) {
    char path[4096];
    snprintf(path, sizeof path, "%s/disk-sync-%ld.probe", dir, (long)arg);
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
    if (fd < 0) { perror(path); exit(1); }
    off_t total = (off_t)bytes * count;
    if (!strcmp(mode, "keep-size")) fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, total);
    if (!strcmp(mode, "sized")) { fallocate(fd, 0, 0, total); fsync(fd); }
    void *buffer;
    if (posix_memalign(&buffer, 4096, bytes < (1 << 20) ? 1 << 20 : bytes)) exit(1);
    if (!strcmp(mode, "written") || !strcmp(mode, "filling")) {
        memset(buffer, 0, 1 << 20);
        for (off_t at = 0; at < total; at += 1 << 20) if (pwrite(fd, buffer, 1 << 20, at) < 0) { perror("pwrite"); exit(1); }
        fsync(fd);
    }
    memset(buffer, 'x', bytes);
    pthread_barrier_wait(&prepared);
    pthread_barrier_wait(&counted);
    double started = seconds();
    for (int i = 0; i < count; i++) {
        if (pwrite(fd, buffer, bytes, (off_t)i * bytes) != (ssize_t)bytes || fdatasync(fd) != 0) { perror("write"); exit(1); }
        appended += (long)bytes;
    }
    double elapsed = seconds() - started;
    printf("  writer %ld: %.3f ms per sync, %.0f syncs/s\n", (long)arg, elapsed * 1e3 / count, count / elapsed);
    close(fd);
    unlink(path);
    free(buffer);
    return NULL;
}

// Writes zeros into 64 MiB files, 1 MiB at a time, synced when full, never ahead of the
// appends: the device work a node spends preparing its next segments.
static void *filler(void *arg) {
    (void)arg;
    char path[4096];
    snprintf(path, sizeof path, "%s/disk-sync-filler.probe", dir);
    void *zeros;
    if (posix_memalign(&zeros, 4096, 1 << 20)) exit(1);
    memset(zeros, 0, 1 << 20);
    const off_t file = 64 << 20;
    int fd = -1;
    off_t at = file;
    while (writing) {
        if (filled + (1 << 20) > appended) { usleep(200); continue; }
        if (at == file) {
            if (fd >= 0) { fdatasync(fd); close(fd); }
            unlink(path);
            fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
            if (fd < 0) { perror(path); exit(1); }
            at = 0;
        }
        if (pwrite(fd, zeros, 1 << 20, at) != 1 << 20) { perror("pwrite"); exit(1); }
        at += 1 << 20;
        filled += 1 << 20;
    }
    if (fd >= 0) close(fd);
    unlink(path);
    free(zeros);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: disk-sync DIR DEVICE MODE BYTES COUNT WRITERS\n"); return 2; }
    dir = argv[1], device = argv[2], mode = argv[3], bytes = strtoul(argv[4], 0, 10), count = atoi(argv[5]);
    int writers = atoi(argv[6]);
    if (bytes == 0 || bytes % 4096 || count <= 0 || writers <= 0 || writers > 16) { fprintf(stderr, "disk-sync: bad arguments\n"); return 2; }
    pthread_t threads[16];
    pthread_barrier_init(&prepared, NULL, writers + 1);
    pthread_barrier_init(&counted, NULL, writers + 1);
    for (long i = 0; i < writers; i++) pthread_create(&threads[i], NULL, writer, (void *)i);
    pthread_barrier_wait(&prepared);
    long before = device_writes();
    pthread_t fill;
    writing = 1;
    if (!strcmp(mode, "filling")) pthread_create(&fill, NULL, filler, NULL);
    pthread_barrier_wait(&counted);
    for (int i = 0; i < writers; i++) pthread_join(threads[i], NULL);
    writing = 0;
    if (!strcmp(mode, "filling")) pthread_join(fill, NULL);
    long after = device_writes();
    if (before >= 0) printf("  device writes per sync: %.2f\n", (double)(after - before) / ((double)count * writers));
    return 0;
}
