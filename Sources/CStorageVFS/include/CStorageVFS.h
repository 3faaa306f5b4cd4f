#ifndef CHAPAR_STORAGE_VFS_H
#define CHAPAR_STORAGE_VFS_H

#include <sqlite3.h>

// Registers "chapar-coalescing", a SQLite VFS over the default one, and makes it the
// default. Its files behave as the default VFS's unless `chapar_vfs_coalesce_wal` is
// called for a connection. Idempotent; returns an SQLite result code.
int chapar_vfs_register(void);

// Makes `db`'s write-ahead log (open: WAL mode, after its first transaction) gather
// consecutive writes into one pwrite until the log is synced, read, sized, truncated or
// closed, or a commit is published to other connections (a WAL commit otherwise costs two
// pwrites per page: the 24-byte frame header, then the page). Any `synchronous` setting:
// other connections learn of new frames only through the wal-index header, whose
// publication writes the buffer first. Returns SQLITE_OK, or SQLITE_MISUSE when the
// database or its log is not open through this VFS.
int chapar_vfs_coalesce_wal(sqlite3 *db);

// For tests: 1 and the write calls made and bytes written through `db`'s log since it
// began coalescing; 0 when it does not coalesce.
int chapar_vfs_wal_writes(sqlite3 *db, long long *calls, long long *bytes);

#endif
