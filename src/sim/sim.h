/* What the parts of isc.sim.server share: the request reader (reader.c), the
 * response writer (writer.c), the call of the Lua handler (handler.c), the
 * connections and their poll() loop (loop.c), and the Lua module itself
 * (server.c). */
#ifndef ISC_SIM_H
#define ISC_SIM_H

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core.h"
#include "server.h"

#define HEADERS_MAX 100 /* header fields per request: 431 above */

enum { ST_READ, ST_DELAY, ST_WRITE, ST_DRAIN, ST_CLOSED };
enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };
enum { FAULT_NONE, FAULT_RESET, FAULT_TRUNCATE };

struct field {
	const char *name, *value;
	size_t name_len, value_len;
};

/* The parsed head of the request being dispatched; pointers into conn.in. */
struct head {
	const char *method, *target;
	size_t method_len, target_len, path_len;
	int minor, body_mode, keep_alive, expect_continue;
	size_t content_length;
	size_t nfields;
	struct field fields[HEADERS_MAX];
};

/* One client connection: its buffers and where its request and response are. */
struct conn {
	int fd, state;
	double deadline;        /* per state: the request's deadline, delay end, drain end */
	double since;           /* when it began waiting for this request (or draining) */
	double first_byte;      /* when this request's first byte came; 0: none yet */
	double body_start;      /* when its head was complete */
	char *in;               /* received bytes; the current request starts at 0 */
	size_t in_len, in_cap;
	char *out;              /* the unsent rest of a response */
	size_t out_len, out_off, out_cap;
	/* the request being read */
	size_t scan;            /* where the search for the end of the head resumes */
	size_t head_end;        /* 0 until the head is complete */
	int body_mode, minor, keep_alive, head_only;
	size_t body_len;        /* Content-Length, or bytes de-chunked so far */
	size_t chunk_pos, chunk_left;
	int chunk_phase;
	size_t req_end;         /* bytes the complete request occupies */
	/* the response in flight */
	int close_after, fault, status;
	size_t resp_bytes;
	double started;
	size_t target_len;      /* for the log line: the target sits in `in` */
	size_t method_len;
};

/* A response as the handler described it; the header section is in loop.hdr. */
struct resp {
	int status, fault;
	int close;              /* end the connection after it, whatever the client asked */
	const char *body;
	size_t body_len;
	double delay;
};

/* What server:stats() reports. The loop's thread writes, any thread reads. */
struct sim_stats {
	atomic_size_t accepted, evicted, refused, timed_out, heads, received; /* so far */
	atomic_size_t connections, buffered; /* open now; bytes of their input buffers */
};

/* The limits and settings of one server (isc.sim.server options). */
struct opts {
	const char *host;
	int port, log, backlog;
	size_t max_connections, max_body;
	double idle, head_timeout, body_timeout;
};

/* One server: the listening socket, its connections, the handler. */
struct loop {
	lua_State *L;           /* the state the handler runs in */
	int handler;            /* its stack index there */
	int listen_fd, wake_fd;
	int port;
	struct opts o;          /* o.host is not kept */
	const sigset_t *waitmask; /* signal mask while polling; NULL: ignore signals */
	int stopping;
	double now, accept_resume;
	struct conn **conns;
	size_t nconns, cap;
	struct pollfd *pfd;
	char *hdr;              /* the response head being built */
	size_t hdr_len, hdr_cap;
	struct head head;
	time_t date_time;
	char date[64];
	size_t date_len;
	uint64_t rng;
	struct sim_stats stats;
	char err[256];
};

/* reader.c: the request reader. */
int sim_is_token(const char *s, size_t n);
int sim_is_field_value(const char *s, size_t n);
/* Whether a[0, an) equals the string b, ignoring ASCII case. */
int sim_ieq(const char *a, size_t an, const char *b);
/* Advances the request being read in c->in, without touching the socket.
 * Returns 1 when a complete request is in lp->head, 0 when more input is
 * needed, or the status to refuse it with (*why says why). */
int sim_parse_request(struct loop *lp, struct conn *c, const char **why);
/* Drops the answered request from c->in: the bytes after it, if any, move
 * to the front as the start of the next request. */
void sim_request_consume(struct conn *c);

/* writer.c: response heads, ISC error bodies, sending. */
/* Grows *buf to hold at least need bytes; 0 on success. */
int sim_reserve(char **buf, size_t *cap, size_t need);
/* Appends to the response head being built in lp->hdr; 0 on success. */
int sim_hdr_add(struct loop *lp, const char *s, size_t n);
/* Starts the response head with the status line; 0 on success. */
int sim_head_begin(struct loop *lp, int status);
/* Ends the head with the framing headers the server owns; 0 on success. */
int sim_head_end(struct loop *lp, struct conn *c, const struct resp *r, int with_date);
/* Sends the head in lp->hdr and the body, or holds them for a delay. */
void sim_send_response(struct loop *lp, struct conn *c, const struct resp *r);
/* Answers with an ISC ErrorResponseDto whose text is the Lua value at
 * text_idx, or the C string text when text_idx is 0. */
void sim_send_error(struct loop *lp, struct conn *c, int status, const char *detail, int text_idx,
                    const char *text);
/* Answers a request the server itself refuses, and closes. */
void sim_refuse(struct loop *lp, struct conn *c, int status, const char *text);
/* The log line of a finished request on stderr. */
void sim_log_request(const struct conn *c);

/* handler.c: the Lua side of a request. */
/* Pushes the request table the handler receives. */
void sim_push_request(lua_State *L, const struct conn *c, const struct head *h);
/* Answers the complete request in lp->head through the Lua handler. */
void sim_dispatch(struct loop *lp, struct conn *c);

/* loop.c: connections and the poll() loop. */
/* Closes the socket; the loop frees the connection after the current pass. */
void sim_conn_close(struct conn *c);
/* Ends the connection with a TCP reset: the client sees no response at all. */
void sim_conn_reset(struct conn *c);
/* After the last byte of a response: a lingering close, or on to the next request. */
void sim_response_done(struct loop *lp, struct conn *c);
/* A loop with the options o that is not listening yet; NULL when out of
 * memory or descriptors. */
struct loop *sim_loop_new(const struct opts *o);
/* Binds and listens on host:port; 0, or -1 with lp->err set. */
int sim_loop_listen(struct loop *lp, const char *host, int port);
/* Runs the loop until the wake fd fires, the handler says "stop", or (when
 * lp->waitmask is set) SIGINT/SIGTERM arrives. Returns 0, the signal number,
 * or -1 with lp->err set. */
int sim_loop_run(struct loop *lp);
/* Closes the listening socket and every connection. */
void sim_loop_shutdown(struct loop *lp);
/* Closes every descriptor of the loop and frees it; NULL is allowed. */
void sim_loop_free(struct loop *lp);

#endif
