/* The simulator's connections and their poll() loop: accepting within the
 * connection cap, reading requests against their deadlines, writing and
 * delaying responses, lingering closes. One thread runs a loop; nothing here
 * blocks. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define DRAIN_SECONDS 2.0               /* lingering close before the last close() */
#define READ_MIN 16384                  /* free space wanted before each recv */
#define KEEP_BUFFER (1024 * 1024)       /* larger idle buffers are given back */
#define ACCEPT_BATCH 64
#define BODY_RATE (64 * 1024)           /* bytes/s a body must keep up after body_timeout */

/* Adds n to a figure of server:stats(). */
static void count(atomic_size_t *figure, size_t n)
{
	atomic_fetch_add_explicit(figure, n, memory_order_relaxed);
}

/* Takes n from a gauge of server:stats(). */
static void uncount(atomic_size_t *gauge, size_t n)
{
	atomic_fetch_sub_explicit(gauge, n, memory_order_relaxed);
}

void sim_conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = ST_CLOSED;
}

/* Closes the socket if still open and frees the connection. */
static void conn_free(struct loop *lp, struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	uncount(&lp->stats.connections, 1);
	uncount(&lp->stats.buffered, c->in_cap);
	free(c->in);
	free(c->out);
	free(c);
}

void sim_conn_reset(struct conn *c)
{
	struct linger lg = {1, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	sim_conn_close(c);
}

/* When the request being read must be complete: idle_timeout after the
 * connection began waiting while nothing of it came, head_timeout after its
 * first byte until the head is complete, then body_timeout plus a second per
 * BODY_RATE bytes received. Counted from fixed points, so a client that
 * trickles bytes cannot push it back. */
static double read_deadline(const struct loop *lp, const struct conn *c)
{
	if (c->head_end)
		return c->body_start + lp->o.body_timeout + (double)(c->in_len - c->head_end) / BODY_RATE;
	if (c->first_byte > 0)
		return c->first_byte + lp->o.head_timeout;
	return c->since + lp->o.idle;
}

/* Back to waiting for a request, whose first bytes may already be buffered. */
static void await_request(struct loop *lp, struct conn *c)
{
	c->state = ST_READ;
	c->since = lp->now;
	c->first_byte = c->in_len ? lp->now : 0;
	c->deadline = read_deadline(lp, c);
}

void sim_response_done(struct loop *lp, struct conn *c)
{
	if (lp->o.log)
		sim_log_request(c);
	if (c->close_after) {
		shutdown(c->fd, SHUT_WR);
		c->in_len = 0;
		c->state = ST_DRAIN;
		c->since = lp->now;
		c->deadline = lp->now + DRAIN_SECONDS;
		return;
	}
	sim_request_consume(c);
	if (!c->in_len && c->in_cap > KEEP_BUFFER) {
		uncount(&lp->stats.buffered, c->in_cap);
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	if (c->out_cap > KEEP_BUFFER) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	c->out_len = c->out_off = 0;
	await_request(lp, c);
}

/* Sends what is left in c->out; finishes the response when it is all out. */
static void conn_flush(struct loop *lp, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				sim_conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		c->deadline = lp->now + lp->o.idle;
	}
	sim_response_done(lp, c);
}

/* Advances the request being read. Returns 1 when a complete request is in
 * lp->head, 0 when more input is needed, -1 when it was refused. */
static int read_request(struct loop *lp, struct conn *c)
{
	const char *why;
	int had_head = c->head_end != 0;
	int status = sim_parse_request(lp, c, &why);
	if (status > 1) {
		sim_refuse(lp, c, status, why);
		return -1;
	}
	if (!had_head && c->head_end) {
		c->body_start = lp->now;
		count(&lp->stats.heads, 1);
		if (lp->head.expect_continue) {
			/* 25 bytes on a connection with nothing else unsent always fit */
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			ssize_t n = send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL);
			(void)n;
		}
	}
	return status;
}

/* Answers every complete request buffered on c, in order, while the
 * connection is free to answer; then sets the deadline of the next. */
static void conn_advance(struct loop *lp, struct conn *c)
{
	while (c->state == ST_READ && !lp->stopping && read_request(lp, c) == 1)
		sim_dispatch(lp, c);
	if (c->state == ST_READ)
		c->deadline = read_deadline(lp, c);
}

/* Reads what the socket has, then answers what became complete. The buffer
 * grows with what arrives, never with what a Content-Length announces. */
static void conn_read(struct loop *lp, struct conn *c)
{
	if (c->in_cap - c->in_len < READ_MIN) {
		size_t had = c->in_cap;
		if (sim_reserve(&c->in, &c->in_cap, c->in_len + READ_MIN)) {
			sim_conn_close(c);
			return;
		}
		count(&lp->stats.buffered, c->in_cap - had);
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			sim_conn_close(c);
		return;
	}
	if (n == 0) { /* the client is done; a partial request dies with it */
		sim_conn_close(c);
		return;
	}
	if (!c->first_byte)
		c->first_byte = lp->now;
	c->in_len += (size_t)n;
	count(&lp->stats.received, (size_t)n);
	conn_advance(lp, c);
}

/* Reads and drops input until the client closes (or the drain time ends),
 * so that closing does not reset a response the client has not read. */
static void conn_drain(struct conn *c)
{
	char sink[4096];
	ssize_t n;
	int reads = 16; /* a client that keeps sending must not hold the loop */
	while ((n = recv(c->fd, sink, sizeof sink, 0)) > 0 && --reads)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		sim_conn_close(c);
}

/* A connection's deadline passed: per state, release or close it. A request
 * cut off half-read is answered 408 first, so the client knows why. */
static void conn_timeout(struct loop *lp, struct conn *c)
{
	if (c->state == ST_READ) {
		count(&lp->stats.timed_out, 1);
		if (c->in_len)
			sim_refuse(lp, c, 408, c->head_end ? "request body not received in time"
			                                    : "request head not received in time");
		else
			sim_conn_close(c);
		return;
	}
	if (c->state != ST_DELAY) {
		sim_conn_close(c);
		return;
	}
	if (c->fault == FAULT_RESET) {
		if (lp->o.log)
			sim_log_request(c);
		sim_conn_reset(c);
		return;
	}
	c->state = ST_WRITE;
	c->deadline = lp->now + lp->o.idle;
	conn_flush(lp, c);
	if (c->state == ST_READ)
		conn_advance(lp, c);
}

/* Doubles the room for connections (and their poll entries); 0 on success. */
static int loop_grow(struct loop *lp)
{
	size_t cap = lp->cap ? lp->cap * 2 : 16;
	struct conn **cs = realloc(lp->conns, cap * sizeof *cs);
	if (!cs)
		return -1;
	lp->conns = cs;
	struct pollfd *pfd = realloc(lp->pfd, (cap + 2) * sizeof *pfd);
	if (!pfd)
		return -1;
	lp->pfd = pfd;
	lp->cap = cap;
	return 0;
}

/* Makes room at the cap: closes the connection that has waited longest for a
 * request that never came whole (or is lingering after its last response),
 * so idle and slow clients cannot keep a new one out. Connections with a
 * response in flight stay. Returns 0 when none can go. */
static int evict_one(struct loop *lp)
{
	struct conn *victim = NULL;
	for (size_t i = 0; i < lp->nconns; i++) {
		struct conn *c = lp->conns[i];
		if ((c->state == ST_READ || c->state == ST_DRAIN) && (!victim || c->since < victim->since))
			victim = c;
	}
	if (!victim)
		return 0;
	sim_conn_close(victim);
	count(&lp->stats.evicted, 1);
	return 1;
}

/* Accepts the waiting connections, within the cap. */
static void loop_accept(struct loop *lp)
{
	size_t open = 0;
	for (size_t i = 0; i < lp->nconns; i++)
		open += lp->conns[i]->state != ST_CLOSED;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: let the open connections finish first */
				lp->accept_resume = lp->now + 0.1;
			}
			return;
		}
		count(&lp->stats.accepted, 1);
		if (open >= lp->o.max_connections) {
			if (!evict_one(lp)) { /* every one is being answered: no room for this one */
				count(&lp->stats.refused, 1);
				close(fd);
				continue;
			}
			open--;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c);
		if (!c || (lp->nconns == lp->cap && loop_grow(lp))) {
			free(c);
			close(fd);
			return;
		}
		c->fd = fd;
		lp->conns[lp->nconns++] = c;
		count(&lp->stats.connections, 1);
		open++;
		await_request(lp, c);
	}
}

/* Frees the connections closed during the pass. */
static void loop_sweep(struct loop *lp)
{
	size_t kept = 0;
	for (size_t i = 0; i < lp->nconns; i++) {
		if (lp->conns[i]->state == ST_CLOSED)
			conn_free(lp, lp->conns[i]);
		else
			lp->conns[kept++] = lp->conns[i];
	}
	lp->nconns = kept;
}

/* The ppoll timeout until the time next (INFINITY: none), rounded up 1 ms so
 * that a deadline has passed when the wait ends. */
static struct timespec *wait_until(const struct loop *lp, double next, struct timespec *ts)
{
	if (next == INFINITY)
		return NULL;
	double wait = next - lp->now;
	if (wait < 0)
		wait = 0;
	ts->tv_sec = (time_t)wait;
	ts->tv_nsec = (long)((wait - (double)ts->tv_sec) * 1e9) + 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
	return ts;
}

int sim_loop_run(struct loop *lp)
{
	int result = 0;
	for (;;) {
		if (lp->waitmask && isc_pending_signal) {
			result = isc_pending_signal;
			break;
		}
		if (lp->stopping)
			break;
		lp->now = isc_monotonic();
		double next = INFINITY;
		nfds_t n = 0;
		int accepting = lp->now >= lp->accept_resume;
		lp->pfd[n++] = (struct pollfd){.fd = accepting ? lp->listen_fd : -1, .events = POLLIN};
		lp->pfd[n++] = (struct pollfd){.fd = lp->wake_fd, .events = POLLIN};
		if (!accepting)
			next = lp->accept_resume;
		for (size_t i = 0; i < lp->nconns; i++) {
			struct conn *c = lp->conns[i];
			static const short events[] = {POLLIN, 0, POLLOUT, POLLIN};
			lp->pfd[n++] = (struct pollfd){.fd = c->fd, .events = events[c->state]};
			if (c->deadline < next)
				next = c->deadline;
		}
		struct timespec ts;
		if (ppoll(lp->pfd, n, wait_until(lp, next, &ts), lp->waitmask) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(lp->err, sizeof lp->err, "poll: %s", strerror(errno));
			result = -1;
			break;
		}
		if (lp->pfd[1].revents)
			break;
		lp->now = isc_monotonic();
		size_t polled = lp->nconns;
		for (size_t i = 0; i < polled && !lp->stopping; i++) {
			struct conn *c = lp->conns[i];
			short ev = lp->pfd[i + 2].revents;
			if (ev & (POLLERR | POLLNVAL))
				sim_conn_close(c);
			else if (c->state == ST_READ && (ev & (POLLIN | POLLHUP)))
				conn_read(lp, c);
			else if (c->state == ST_WRITE && (ev & (POLLOUT | POLLHUP))) {
				conn_flush(lp, c);
				if (c->state == ST_READ)
					conn_advance(lp, c);
			} else if (c->state == ST_DRAIN && (ev & (POLLIN | POLLHUP)))
				conn_drain(c);
			else if (c->state == ST_DELAY && (ev & POLLHUP))
				sim_conn_close(c);
			if (c->state != ST_CLOSED && lp->now >= c->deadline)
				conn_timeout(lp, c);
		}
		if (lp->pfd[0].revents & POLLIN)
			loop_accept(lp);
		loop_sweep(lp); /* after the evictions of accept too: a closed one has no poll entry */
	}
	return result;
}

void sim_loop_shutdown(struct loop *lp)
{
	for (size_t i = 0; i < lp->nconns; i++)
		conn_free(lp, lp->conns[i]);
	lp->nconns = 0;
	if (lp->listen_fd >= 0)
		close(lp->listen_fd);
	lp->listen_fd = -1;
}

void sim_loop_free(struct loop *lp)
{
	if (!lp)
		return;
	sim_loop_shutdown(lp);
	if (lp->wake_fd >= 0)
		close(lp->wake_fd);
	free(lp->conns);
	free(lp->pfd);
	free(lp->hdr);
	free(lp);
}

struct loop *sim_loop_new(const struct opts *o)
{
	struct loop *lp = calloc(1, sizeof *lp);
	if (!lp)
		return NULL;
	lp->listen_fd = -1;
	lp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	lp->pfd = malloc(2 * sizeof *lp->pfd);
	if (lp->wake_fd < 0 || !lp->pfd) {
		sim_loop_free(lp);
		return NULL;
	}
	lp->o = *o;
	lp->o.host = NULL;
	lp->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)lp;
	lp->rng |= 1;
	return lp;
}

int sim_loop_listen(struct loop *lp, const char *host, int port)
{
	char service[8];
	snprintf(service, sizeof service, "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai, *a;
	int rc = getaddrinfo(host, service, &hints, &ai);
	if (rc != 0) {
		snprintf(lp->err, sizeof lp->err, "cannot listen on %s:%d: %s", host, port, gai_strerror(rc));
		return -1;
	}
	int err = 0;
	for (a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, lp->o.backlog) == 0) {
			lp->listen_fd = fd;
			break;
		}
		err = errno;
		close(fd);
	}
	freeaddrinfo(ai);
	if (lp->listen_fd < 0) {
		snprintf(lp->err, sizeof lp->err, "cannot listen on %s:%d: %s", host, port, strerror(err));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	getsockname(lp->listen_fd, (struct sockaddr *)&ss, &len);
	lp->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                          : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}
