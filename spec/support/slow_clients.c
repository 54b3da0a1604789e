/* Slow clients for the server's limit specs: opens COUNT connections to
 * 127.0.0.1:PORT, connection i sending TEXT[i % number of texts] at once and
 * then, every INTERVAL seconds (0: never), one more byte "x" when its text is
 * not empty, as a slowloris does. Runs for at most SECONDS, or until SIGTERM.
 *   slow_clients PORT COUNT INTERVAL SECONDS TEXT...
 * Prints "open N PID" once N connections are made (fewer than COUNT when the
 * descriptor limit, raised to its hard limit first, allows no more), then
 * "closed I T STATUS" as the server closes connection I, T seconds after
 * "open", STATUS being the status of the response it sent first (0: none). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A blocking connection to the loopback port; -1 when none can be made. */
static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: slow_clients PORT COUNT INTERVAL SECONDS TEXT...\n");
		return 2;
	}
	int port = atoi(argv[1]), count = atoi(argv[2]), ntexts = argc - 5;
	double interval = atof(argv[3]), seconds = atof(argv[4]);
	char **texts = argv + 5;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);

	struct pollfd *pfd = calloc((size_t)count, sizeof *pfd);
	int *status = calloc((size_t)count, sizeof *status);
	if (!pfd || !status)
		return 1;
	int n = 0;
	while (n < count) {
		int fd = dial(port);
		if (fd < 0)
			break;
		const char *text = texts[n % ntexts];
		if (*text && send(fd, text, strlen(text), MSG_NOSIGNAL) < 0)
			perror("send");
		pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	printf("open %d %d\n", n, (int)getpid());
	fflush(stdout);

	double start = now(), next = interval > 0 ? start + interval : start + seconds;
	int open = n;
	while (!stop && open > 0 && now() < start + seconds) {
		double wait = next - now();
		int rc = poll(pfd, (nfds_t)n, wait > 0 ? (int)(wait * 1000) + 1 : 0);
		if (rc < 0 && errno != EINTR)
			break;
		for (int i = 0; rc > 0 && i < n; i++) {
			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			char buf[4096];
			ssize_t got = recv(pfd[i].fd, buf, sizeof buf - 1, 0);
			if (got > 0) {
				buf[got] = '\0';
				if (!status[i] && !strncmp(buf, "HTTP/1.1 ", 9))
					status[i] = atoi(buf + 9);
				continue;
			}
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			close(pfd[i].fd);
			pfd[i].fd = -1;
			open--;
			printf("closed %d %.3f %d\n", i, now() - start, status[i]);
			fflush(stdout);
		}
		if (interval > 0 && now() >= next) {
			for (int i = 0; i < n; i++)
				if (pfd[i].fd >= 0 && *texts[i % ntexts])
					send(pfd[i].fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			next += interval;
		}
	}
	for (int i = 0; i < n; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	free(pfd);
	free(status);
	printf("done\n");
	return 0;
}
