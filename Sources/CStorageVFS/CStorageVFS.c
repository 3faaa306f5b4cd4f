// A SQLite VFS whose write-ahead logs may coalesce writes (see include/CStorageVFS.h).
//
// Why it is safe, synced or not: SQLite writes a transaction's frames (and syncs the log,
// if it syncs commits), and only then publishes the new frames to other connections, by
// writing the wal-index header twice with a shared-memory barrier between the copies;
// readers take a header only when both copies agree. The barrier is called on the
// database file, which knows its coalescing log and writes the buffer first: so no other
// connection can see a frame whose bytes are still here, and the commit returns only
// after they reached the OS. This connection's own reads of the log write it first too.
// What a crashed process had buffered was never committed. Writes are never reordered:
// only a write that continues the buffer joins it; any other writes it first. A file is
// used by one connection, and a connection by one thread at a time.

#include "CStorageVFS.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BUFFER_BYTES = 1 << 20 };

typedef struct CoalescingFile {
    sqlite3_file base;
    sqlite3_file *real;       // the default VFS's file, allocated right after this struct
    int coalesce;             // set by chapar_vfs_coalesce_wal
    unsigned char *buffer;    // BUFFER_BYTES, allocated when coalescing starts
    sqlite3_int64 start;      // file offset of buffer[0]
    int length;               // bytes buffered
    long long calls, bytes;   // writes made while coalescing
    struct CoalescingFile *log;    // on a database file: its coalescing log, if any
    struct CoalescingFile *owner;  // on a coalescing log: the database file that knows it
} CoalescingFile;

static sqlite3_vfs coalescing;
static sqlite3_vfs *underlying;

// The default VFS writes at most 128 KiB - 1 per call (it masks larger counts and
// reports the short write as SQLITE_FULL): larger writes go in pieces of this size.
enum { WRITE_BYTES_MAX = 64 << 10 };

static int writeThrough(CoalescingFile *file, const void *data, int amount, sqlite3_int64 offset) {
    const unsigned char *bytes = data;
    while (amount > 0) {
        int piece = amount < WRITE_BYTES_MAX ? amount : WRITE_BYTES_MAX;
        if (file->coalesce) {
            file->calls += 1;
            file->bytes += piece;
        }
        int rc = file->real->pMethods->xWrite(file->real, bytes, piece, offset);
        if (rc != SQLITE_OK) return rc;
        bytes += piece;
        offset += piece;
        amount -= piece;
    }
    return SQLITE_OK;
}

static int flush(CoalescingFile *file) {
    if (file->length == 0) return SQLITE_OK;
    int length = file->length;
    file->length = 0;
    return writeThrough(file, file->buffer, length, file->start);
}

static int xWrite(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
    CoalescingFile *file = (CoalescingFile *)f;
    if (!file->coalesce) return file->real->pMethods->xWrite(file->real, data, amount, offset);
    if (file->length > 0 && file->start + file->length == offset && file->length + amount <= BUFFER_BYTES) {
        memcpy(file->buffer + file->length, data, (size_t)amount);
        file->length += amount;
        return SQLITE_OK;
    }
    int rc = flush(file);
    if (rc != SQLITE_OK) return rc;
    if (amount > BUFFER_BYTES / 2) return writeThrough(file, data, amount, offset);
    memcpy(file->buffer, data, (size_t)amount);
    file->start = offset;
    file->length = amount;
    return SQLITE_OK;
}

// The default VFS's method `m`, called on the file under `f`.
#define FORWARD(f, m, ...) (((CoalescingFile *)(f))->real->pMethods->m(((CoalescingFile *)(f))->real, __VA_ARGS__))
// Every call but a write sees the file as written: buffered bytes go first.
#define FLUSHED(f, m, ...) do { \
    int rc_ = flush((CoalescingFile *)(f)); \
    return rc_ != SQLITE_OK ? rc_ : FORWARD(f, m, __VA_ARGS__); \
} while (0)

static int xClose(sqlite3_file *f) {
    CoalescingFile *file = (CoalescingFile *)f;
    if (file->owner != NULL) file->owner->log = NULL;
    if (file->log != NULL) file->log->owner = NULL;
    int rc = flush(file);
    int closed = file->real->pMethods->xClose(file->real);
    free(file->buffer);
    file->buffer = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int xRead(sqlite3_file *f, void *data, int amount, sqlite3_int64 offset) { FLUSHED(f, xRead, data, amount, offset); }
static int xTruncate(sqlite3_file *f, sqlite3_int64 size) { FLUSHED(f, xTruncate, size); }
static int xSync(sqlite3_file *f, int flags) { FLUSHED(f, xSync, flags); }
static int xFileSize(sqlite3_file *f, sqlite3_int64 *size) { FLUSHED(f, xFileSize, size); }
static int xLock(sqlite3_file *f, int level) { FLUSHED(f, xLock, level); }
static int xUnlock(sqlite3_file *f, int level) { FLUSHED(f, xUnlock, level); }
static int xFileControl(sqlite3_file *f, int op, void *arg) { FLUSHED(f, xFileControl, op, arg); }
static int xFetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) { FLUSHED(f, xFetch, offset, amount, out); }
static int xCheckReservedLock(sqlite3_file *f, int *out) { return FORWARD(f, xCheckReservedLock, out); }
static int xShmMap(sqlite3_file *f, int page, int pageSize, int extend, void volatile **out) {
    return FORWARD(f, xShmMap, page, pageSize, extend, out);
}
static int xShmLock(sqlite3_file *f, int offset, int n, int flags) { return FORWARD(f, xShmLock, offset, n, flags); }
static int xShmUnmap(sqlite3_file *f, int deleteFlag) { return FORWARD(f, xShmUnmap, deleteFlag); }
static int xUnfetch(sqlite3_file *f, sqlite3_int64 offset, void *page) { return FORWARD(f, xUnfetch, offset, page); }
// Methods without arguments beyond the file.
static int xSectorSize(sqlite3_file *f) { sqlite3_file *real = ((CoalescingFile *)f)->real; return real->pMethods->xSectorSize(real); }
static int xDeviceCharacteristics(sqlite3_file *f) {
    sqlite3_file *real = ((CoalescingFile *)f)->real;
    return real->pMethods->xDeviceCharacteristics(real);
}
// Called between the wal-index header's two copies: the log's buffered frames must be in
// the file before the second copy publishes them. The barrier cannot report an error, and
// publishing frames that are not there would show other connections pages that do not
// exist: a failed write stops the process (the node replays its entry log at restart).
static void xShmBarrier(sqlite3_file *f) {
    CoalescingFile *file = (CoalescingFile *)f;
    if (file->log != NULL && flush(file->log) != SQLITE_OK) {
        fputs("chapar: writing the SQLite write-ahead log failed before publishing a commit\n", stderr);
        abort();
    }
    file->real->pMethods->xShmBarrier(file->real);
}

#define METHODS(version) { version, xClose, xRead, xWrite, xTruncate, xSync, xFileSize, xLock, xUnlock, \
    xCheckReservedLock, xFileControl, xSectorSize, xDeviceCharacteristics, xShmMap, xShmLock, xShmBarrier, \
    xShmUnmap, xFetch, xUnfetch }
// SQLite calls only the methods its file's version has: one table per version.
static const sqlite3_io_methods methodsByVersion[3] = { METHODS(1), METHODS(2), METHODS(3) };

static int xOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *outFlags) {
    (void)vfs;
    CoalescingFile *file = (CoalescingFile *)f;
    memset(file, 0, sizeof *file);
    file->real = (sqlite3_file *)(file + 1);
    int rc = underlying->xOpen(underlying, name, file->real, flags, outFlags);
    if (file->real->pMethods == NULL) return rc;  // failed, and SQLite calls no method on it
    int version = file->real->pMethods->iVersion;
    file->base.pMethods = &methodsByVersion[(version < 1 ? 1 : version > 3 ? 3 : version) - 1];
    return rc;
}

static int xDelete(sqlite3_vfs *vfs, const char *name, int syncDir) {
    (void)vfs;
    return underlying->xDelete(underlying, name, syncDir);
}

static int xAccess(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
    (void)vfs;
    return underlying->xAccess(underlying, name, flags, out);
}

static int xFullPathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    return underlying->xFullPathname(underlying, name, size, out);
}

static void *xDlOpen(sqlite3_vfs *vfs, const char *name) { (void)vfs; return underlying->xDlOpen(underlying, name); }
static void xDlError(sqlite3_vfs *vfs, int size, char *out) { (void)vfs; underlying->xDlError(underlying, size, out); }
static void (*xDlSym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) {
    (void)vfs;
    return underlying->xDlSym(underlying, handle, symbol);
}
static void xDlClose(sqlite3_vfs *vfs, void *handle) { (void)vfs; underlying->xDlClose(underlying, handle); }
static int xRandomness(sqlite3_vfs *vfs, int size, char *out) { (void)vfs; return underlying->xRandomness(underlying, size, out); }
static int xSleep(sqlite3_vfs *vfs, int micros) { (void)vfs; return underlying->xSleep(underlying, micros); }
static int xCurrentTime(sqlite3_vfs *vfs, double *out) { (void)vfs; return underlying->xCurrentTime(underlying, out); }
static int xGetLastError(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return underlying->xGetLastError ? underlying->xGetLastError(underlying, size, out) : 0;
}
static int xCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
    (void)vfs;
    return underlying->xCurrentTimeInt64(underlying, out);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static void registerOnce(void) {
    underlying = sqlite3_vfs_find(NULL);
    if (underlying == NULL || underlying->iVersion < 2) return;
    coalescing = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(CoalescingFile) + underlying->szOsFile,
        .mxPathname = underlying->mxPathname,
        .zName = "chapar-coalescing",
        .xOpen = xOpen, .xDelete = xDelete, .xAccess = xAccess, .xFullPathname = xFullPathname,
        .xDlOpen = xDlOpen, .xDlError = xDlError, .xDlSym = xDlSym, .xDlClose = xDlClose,
        .xRandomness = xRandomness, .xSleep = xSleep, .xCurrentTime = xCurrentTime,
        .xGetLastError = xGetLastError, .xCurrentTimeInt64 = xCurrentTimeInt64,
    };
    registered = sqlite3_vfs_register(&coalescing, 1);
}

int chapar_vfs_register(void) {
    pthread_once(&once, registerOnce);
    return registered;
}

static int isOurs(const sqlite3_file *file) {
    const sqlite3_io_methods *methods = file->pMethods;
    return methods == &methodsByVersion[0] || methods == &methodsByVersion[1] || methods == &methodsByVersion[2];
}

// The connection's write-ahead log, if it is open through this VFS.
static CoalescingFile *logOf(sqlite3 *db) {
    sqlite3_file *log = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK || log == NULL) return NULL;
    return isOurs(log) ? (CoalescingFile *)log : NULL;
}

int chapar_vfs_coalesce_wal(sqlite3 *db) {
    CoalescingFile *file = logOf(db);
    sqlite3_file *database = NULL;
    if (file == NULL || sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &database) != SQLITE_OK
        || database == NULL || !isOurs(database))
        return SQLITE_MISUSE;
    if (file->buffer == NULL && (file->buffer = malloc(BUFFER_BYTES)) == NULL) return SQLITE_NOMEM;
    file->coalesce = 1;
    file->owner = (CoalescingFile *)database;
    file->owner->log = file;
    return SQLITE_OK;
}

int chapar_vfs_wal_writes(sqlite3 *db, long long *calls, long long *bytes) {
    CoalescingFile *file = logOf(db);
    if (file == NULL || !file->coalesce) return 0;
    *calls = file->calls;
    *bytes = file->bytes;
    return 1;
}
