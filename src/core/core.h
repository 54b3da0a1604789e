/* Shared declarations of the isc.core module: one C module, several parts. */
#ifndef ISC_CORE_H
#define ISC_CORE_H

#include <signal.h>
#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

#ifndef ISCLUA_VERSION
#define ISCLUA_VERSION "0.0.0"
#endif

/* Registry name of the metatable every structured isc error carries. */
#define ISC_ERROR_MT "isc.error"
/* Registry name of the metatable that marks a table as a JSON array. */
#define ISC_ARRAY_MT "isc.json.array"

/* Each part adds its functions to the module table on top of the stack. */
void isc_open_sys(lua_State *L);
void isc_open_json(lua_State *L);
void isc_open_http(lua_State *L);
void isc_open_pager(lua_State *L);
void isc_open_cron(lua_State *L);
void isc_open_wait(lua_State *L);
void isc_open_loop(lua_State *L);

int luaopen_isc_core(lua_State *L);

/* Structured errors (core.c). isc_push_error leaves a table
 * {kind=, message=} with the isc.error metatable on the stack;
 * isc_raise does the same and raises it. */
void isc_push_error(lua_State *L, const char *kind, const char *fmt, ...);
int isc_raise(lua_State *L, const char *kind, const char *fmt, ...);

/* Interrupts (sys.c). Signal handlers only record the signal; blocking calls
 * (sleep, transfers, the simulator loop) check it and unwind with a
 * structured "interrupted" error. */
extern volatile sig_atomic_t isc_pending_signal;
/* A held stop (core.hold_stops, for script runs): the signal that stopped
 * the run (0: none), and whether it is still unwinding to the message
 * handler of core.stop_handler; while it is, the host's hook raises
 * "interrupted" at every Lua instruction, so pcall cannot swallow it. */
extern volatile sig_atomic_t isc_held_stop, isc_stop_unwinding;
/* The signal handler: records sig (a held stop keeps the first), starts the
 * watchdog of a held stop, then runs the host's extra (see below). The
 * deadline's SIGALRM handler passes its signal on to it. */
void isc_record_signal(int sig);
/* Installs isc_record_signal for SIGINT/SIGTERM without SA_RESTART so that a
 * blocking syscall returns EINTR at once. The host calls it once; the shared
 * module calls it around each blocking call (isc_signals_enter / _leave).
 * extra, if not NULL, runs after the signal is recorded (the host sets a Lua
 * hook). */
void isc_signals_install(void (*extra)(int));
typedef struct { struct sigaction intr, term; int active; } isc_sigsave;
void isc_signals_enter(isc_sigsave *save);
void isc_signals_leave(isc_sigsave *save);
/* Raises {kind="interrupted", signal=N} and clears the pending signal,
 * unless it is a held stop. */
int isc_raise_interrupted(lua_State *L);
/* The exit code core.hold_stops gave for sig (128 + sig if none). */
int isc_stop_exit_code(int sig);
/* Monotonic seconds, for timeouts and intervals. */
double isc_monotonic(void);
/* Waits until fd (if >= 0) is readable or seconds pass, whichever comes
 * first, and ends early when a signal is pending. SIGINT, SIGTERM and SIGALRM
 * are let in only while blocked in the wait, so one arriving just before it
 * still ends it. Returns 1 when fd is readable, 0 when the time passed, -1
 * on a pending signal. */
int isc_wait(int fd, double seconds);

/* JSON (json.c). Decode pushes the value and returns 1, or pushes an error
 * message string and returns 0. Encode appends the value at idx to b and
 * raises a Lua error for a value JSON cannot hold; like luaL_addvalue, idx
 * may be the top of the stack above the buffer, and that value is popped. */
int isc_json_decode(lua_State *L, const char *s, size_t len);
void isc_json_encode(lua_State *L, int idx, luaL_Buffer *b);

/* HTTP (http.c). Pushes a table of the header lines in head[0..len) with
 * lowercased names (lowercasing them in place); repeated headers are joined
 * with ", ", status lines skipped. */
void isc_push_headers(lua_State *L, char *head, size_t len);

/* Set by the host so that a fresh lua_State (a simulator thread) can load the
 * embedded Lua sources; NULL in the shared module, where package.path does. */
extern void (*isc_state_init_hook)(lua_State *L);

#endif
