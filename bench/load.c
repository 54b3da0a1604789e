/* The benchmarks' HTTP load generator, on libcurl's multi interface: a fixed
 * number of keep-alive connections, each with one GET in flight, for a fixed
 * time after a warm-up.
 *   load [-c connections] [-d seconds] [-w warmup] [-H header]... URL
 * Prints one line of counts over the measured time:
 *   requests=N errors=N bytes=N seconds=S connects=N
 * and exits 1 when nothing succeeded. Built by scripts/bench. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

struct totals {
	long requests, errors, connects;
	curl_off_t bytes;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drops the body; curl still counts its size. */
static size_t discard(char *data, size_t size, size_t n, void *unused)
{
	(void)data;
	(void)unused;
	return size * n;
}

static void usage(void)
{
	fprintf(stderr, "usage: load [-c connections] [-d seconds] [-w warmup] [-H header]... URL\n");
}

/* Counts a finished transfer if it ended inside the measured window. */
static void account(struct totals *t, CURLMsg *msg, int measuring)
{
	long status = 0, connects = 0;
	curl_off_t size = 0;
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &connects);
	curl_easy_getinfo(msg->easy_handle, CURLINFO_SIZE_DOWNLOAD_T, &size);
	t->connects += connects;
	if (!measuring)
		return;
	if (msg->data.result == CURLE_OK && status >= 200 && status < 300) {
		t->requests++;
		t->bytes += size;
	} else {
		t->errors++;
	}
}

int main(int argc, char **argv)
{
	int conns = 8, opt;
	double seconds = 5, warmup = 1;
	struct curl_slist *headers = NULL;
	while ((opt = getopt(argc, argv, "c:d:w:H:")) != -1) {
		switch (opt) {
		case 'c': conns = atoi(optarg); break;
		case 'd': seconds = atof(optarg); break;
		case 'w': warmup = atof(optarg); break;
		case 'H': headers = curl_slist_append(headers, optarg); break;
		default: usage(); return 2;
		}
	}
	if (optind != argc - 1 || conns < 1 || seconds <= 0 || warmup < 0) {
		usage();
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)conns);
	CURL **easy = calloc((size_t)conns, sizeof *easy);
	for (int i = 0; i < conns; i++) {
		easy[i] = curl_easy_init();
		curl_easy_setopt(easy[i], CURLOPT_URL, argv[optind]);
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(easy[i], CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		curl_multi_add_handle(multi, easy[i]);
	}
	struct totals t = {0};
	double start = now(), from = start + warmup, until = from + seconds;
	int running = conns;
	while (running > 0) {
		curl_multi_perform(multi, &running);
		CURLMsg *msg;
		int left;
		double at = now();
		while ((msg = curl_multi_info_read(multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			account(&t, msg, at >= from && at < until);
			curl_multi_remove_handle(multi, e);
			/* the same handle again: it takes its connection back from the pool */
			if (at < until) {
				curl_multi_add_handle(multi, e);
				running++;
			}
		}
		if (running > 0)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	printf("requests=%ld errors=%ld bytes=%lld seconds=%.3f connects=%ld\n", t.requests, t.errors,
	       (long long)t.bytes, seconds, t.connects);
	for (int i = 0; i < conns; i++)
		curl_easy_cleanup(easy[i]);
	free(easy);
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return t.requests > 0 ? 0 : 1;
}
