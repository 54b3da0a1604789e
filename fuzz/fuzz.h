/* What the libFuzzer targets in fuzz/ share: one Lua state per process with
 * isc.core and the repository's lua/ files, and deep equality. */
#ifndef ISC_FUZZ_H
#define ISC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The process's Lua state, made on first use: standard libraries,
 * package.path on the repository's lua/, isc.core in package.preload. The
 * stack is empty on return. */
lua_State *fuzz_state(void);

/* Pushes require(name). */
void fuzz_require(lua_State *L, const char *name);

/* Calls the function under nargs arguments on the stack, protected, leaving
 * one result; a Lua error there is a finding. */
void fuzz_call(lua_State *L, int nargs, const char *what);

/* Whether the values at a and b are the same document: equal tables key by
 * key and with the same metatable, integers apart from floats, -0.0 apart
 * from 0.0. */
int fuzz_same(lua_State *L, int a, int b);

/* Reports a finding and aborts, so that libFuzzer saves the input. */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
