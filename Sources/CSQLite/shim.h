#ifndef CHAPAR_CSQLITE_SHIM_H
#define CHAPAR_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }
// SQLITE_STATIC likewise: the caller guarantees the bytes outlive the statement step.
static inline sqlite3_destructor_type csqlite_static(void) { return SQLITE_STATIC; }

#endif
