// SPDX-License-Identifier: MIT
/*
 * vhost-drive's modes: what to send, when to wait, and what a received frame
 * means (ARP is answered in every mode; an echo reply ends a ping's wait).
 * Then the report: one JSON object on stdout, its keys in a fixed order.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "modes.h"

/* ---- received frames ---- */

void frame_in(struct drv *d, const uint8_t *f, size_t cap)
{
	struct arp_view a;

	if (arp_parse(f, cap, &a)) {
		if (a.op == 1 && !memcmp(a.tpa, &d->o.fl.src_ip, 4)) {
			d->s.arp_requests++;
			if (send_arp(d, 2, a.sha, a.spa))
				d->s.arp_replies++;
		} else if (a.op == 2 && !memcmp(a.spa, &d->o.fl.dst_ip, 4)) {
			d->arp_got = true;
		}
	} else if (d->ping_waiting &&
		   echo_reply_match(&d->o.fl, f, cap, d->ping_id, d->ping_seq)) {
		d->ping_got = true;
		d->ping_t1 = now_ns();
	}
}

/* An ARP request or reply (see build_arp()), if a TX descriptor is free: a
 * control frame never waits for one, it is counted as dropped instead. */
bool send_arp(struct drv *d, uint16_t op, const uint8_t *tmac, const uint8_t *tip)
{
	uint8_t f[60];
	int id = tx_take(d);

	if (id < 0) {
		d->s.ctrl_drops++;
		return false;
	}
	tx_ctrl_post(d, id, f, build_arp(&d->o.fl, f, op, tmac, tip));
	return true;
}

/* ---- modes ---- */

/* Serve RX (ARP) and reclaim TX until t_end or until *flag is set. */
void idle_until(struct drv *d, uint64_t t_end, const bool *flag)
{
	uint64_t every = (uint64_t)(d->o.kick_ms * 1e6);

	while (!stop && !(flag && *flag)) {
		uint64_t t = now_ns(), wait = t_end - t;

		if (t >= t_end)
			break;
		if (every) {
			if (t >= d->next_kick) {
				ring_kick(d, &d->rx);
				d->next_kick = t + every;
			}
			wait = min_u64(wait, d->next_kick - t);
		}
		tx_reclaim(d);
		if (!rx_poll(d))
			wait_calls(d, wait, false);
	}
}

/* Fill every free TX descriptor (or as many as --rate allows), kick once per
 * batch, and sleep only when the ring is full or the pace says so. */
void run_tx(struct drv *d, uint64_t t0, uint64_t t_end)
{
	uint64_t sent = 0;

	while (!stop) {
		uint64_t t = now_ns(), allowed;
		unsigned posted = 0;

		if (t >= t_end)
			break;
		rx_poll(d);
		tx_reclaim(d);
		allowed = pace_allowed(d->o.rate, t0, t, sent);
		while (d->tx_nfree && posted < allowed) {
			tx_data(d, d->tx_free[--d->tx_nfree]);
			posted++;
		}
		sent += posted;
		ring_publish(d, &d->tx);
		if (!d->tx_nfree) {
			d->s.full_waits++;
			wait_calls(d, min_u64(t_end - t, NS / 10), true);
		} else if (d->o.rate > 0) {
			uint64_t next = pace_next(d->o.rate, t0, sent);

			wait_calls(d, next > t ? min_u64(next - t, t_end - t) : 0, false);
		}
	}
}

/* Wait (up to timeout) until vhost has completed every TX descriptor. */
bool tx_drain(struct drv *d, uint64_t timeout)
{
	uint64_t t_end = now_ns() + timeout;

	for (;;) {
		uint64_t t = now_ns();

		tx_reclaim(d);
		rx_poll(d);
		if (d->tx_nfree == d->tx.num)
			return true;
		if (t >= t_end || stop)
			return false;
		wait_calls(d, t_end - t, true);
	}
}

/* One echo request at a time: the next goes when the reply is in or the
 * previous one timed out, so each sample is one unqueued round trip. */
void run_ping(struct drv *d, uint64_t t_end, struct ping_result *pr)
{
	uint64_t timeout = (uint64_t)d->o.ping_timeout_ms * 1000000;
	uint8_t f[CTRL_MAX];

	d->ping_id = (uint16_t)(getpid() & 0xffff);
	while (!stop && now_ns() < t_end && !(d->o.count && pr->sent >= d->o.count)) {
		uint64_t t0, deadline = now_ns() + timeout;
		size_t len;
		int id;

		while ((id = tx_take(d)) < 0 && now_ns() < deadline && !stop)
			wait_calls(d, NS / 100, true);
		if (id < 0) {
			fprintf(stderr, "vhost-drive: ping: no TX descriptor came back within "
				"--ping-timeout-ms; stopping\n");
			break;
		}
		d->ping_seq++;
		d->ping_got = false;
		d->ping_waiting = true;
		len = build_echo(&d->o.fl, f, d->ping_id, d->ping_seq, now_ns());
		t0 = now_ns();
		tx_ctrl_post(d, id, f, len);
		pr->sent++;
		idle_until(d, t0 + timeout, &d->ping_got);
		d->ping_waiting = false;
		if (!d->ping_got) {
			pr->lost++;
			continue;
		}
		if (pr->n == pr->cap) {
			pr->cap = pr->cap ? 2 * pr->cap : 1024;
			pr->us = realloc(pr->us, pr->cap * sizeof *pr->us);
			if (!pr->us)
				fail("out of memory");
		}
		pr->us[pr->n++] = (double)(d->ping_t1 - t0) / 1000;
	}
}

/* ---- reporting ---- */

/* User+system seconds of this vhost device's worker: on 6.4+ a thread of this
 * process (vhost_task), on 6.1 a kernel thread; both are named vhost-<pid>. */
static double scan_worker(const char *dir, const char *want)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	double r = -1;

	if (!dp)
		return -1;
	while (r < 0 && (e = readdir(dp))) {
		char path[600], buf[512], *open_p, *close_p;
		unsigned long ut, st;
		FILE *fp;
		size_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
		if (!(fp = fopen(path, "r")))
			continue;
		n = fread(buf, 1, sizeof buf - 1, fp);
		fclose(fp);
		buf[n] = 0;
		open_p = strchr(buf, '(');
		close_p = strrchr(buf, ')');
		if (!open_p || !close_p || close_p < open_p)
			continue;
		*close_p = 0;
		if (strcmp(open_p + 1, want))
			continue;
		if (sscanf(close_p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			r = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	closedir(dp);
	return r;
}

double vhost_worker_cpu(void)
{
	char want[32];
	double r;

	snprintf(want, sizeof want, "vhost-%d", (int)getpid());
	r = scan_worker("/proc/self/task", want);
	return r >= 0 ? r : scan_worker("/proc", want);
}

/* Errors vhost signalled on a queue; --inject has no queues (fd -1). */
static uint64_t drain_eventfd(int fd)
{
	uint64_t v = 0;

	return fd >= 0 && read(fd, &v, sizeof v) == sizeof v ? v : 0;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * The keys and their order are an interface (bench/ parses them, saved
 * results are compared): add keys, do not rename or reorder. With --inject the vhost-only fields are 0 (ring, rxBuf,
 * txCompleted, kicks, calls, ...), features "0x0", vhostWorkerCpuS null, and
 * sendErrors follows vqErrors.
 */
void report(struct drv *d, double seconds, const struct ping_result *pr, int alive,
	    double vcpu0, double vcpu1)
{
	const struct stats *s = &d->s;
	bool inject = d->o.inject != NULL;
	struct rusage self, thread;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_THREAD, &thread);
	printf("{\"mode\":\"%s\",\"backend\":\"%s\",\"hdrLen\":%u,\"vhostHdr\":%s,\"features\":\"0x%llx\","
	       "\"ring\":%u,\"rxBuf\":%u,\"frameSize\":%zu,\"tso\":%u,\"mss\":%u,\"seconds\":%.6f,",
	       mode_names[d->o.mode], inject ? "inject" : d->o.tap ? "tap" : "fd", d->hlen,
	       d->o.vhost_hdr ? "true" : "false", (unsigned long long)d->features,
	       inject ? 0 : d->o.ring, inject ? 0 : d->o.rx_buf, d->data_len, d->o.tso,
	       d->o.mss, seconds);
	printf("\"txFrames\":%llu,\"txBytes\":%llu,\"txCompleted\":%llu,\"rxFrames\":%llu,"
	       "\"rxBytes\":%llu,\"rxBuffers\":%llu,\"rxGsoFrames\":%llu,\"rxErrors\":%llu,"
	       "\"arpRequests\":%llu,\"arpReplies\":%llu,\"ctrlDrops\":%llu,\"kicks\":%llu,"
	       "\"calls\":%llu,\"ringFullWaits\":%llu,\"vqErrors\":{\"rx\":%llu,\"tx\":%llu},",
	       (unsigned long long)s->tx_frames, (unsigned long long)s->tx_bytes,
	       (unsigned long long)s->tx_done, (unsigned long long)s->rx_frames,
	       (unsigned long long)s->rx_bytes, (unsigned long long)s->rx_bufs,
	       (unsigned long long)s->rx_gso, (unsigned long long)s->rx_errors,
	       (unsigned long long)s->arp_requests, (unsigned long long)s->arp_replies,
	       (unsigned long long)s->ctrl_drops, (unsigned long long)s->kicks,
	       (unsigned long long)s->calls, (unsigned long long)s->full_waits,
	       (unsigned long long)drain_eventfd(d->rx.err), (unsigned long long)drain_eventfd(d->tx.err));
	if (inject)
		printf("\"sendErrors\":%llu,", (unsigned long long)s->send_errors);
	if (pr && pr->n) {
		double sum = 0;

		qsort(pr->us, pr->n, sizeof *pr->us, cmp_double);
		for (size_t i = 0; i < pr->n; i++)
			sum += pr->us[i];
		printf("\"latencyUs\":{\"count\":%zu,\"sent\":%llu,\"lost\":%llu,\"min\":%.3f,\"median\":%.3f,"
		       "\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f},", pr->n, (unsigned long long)pr->sent,
		       (unsigned long long)pr->lost, pr->us[0],
		       pr->n % 2 ? pr->us[pr->n / 2] : (pr->us[pr->n / 2 - 1] + pr->us[pr->n / 2]) / 2,
		       pr->us[(pr->n * 99 + 99) / 100 - 1], pr->us[pr->n - 1], sum / (double)pr->n);
	} else if (pr) {
		printf("\"latencyUs\":{\"count\":0,\"sent\":%llu,\"lost\":%llu,\"min\":null,\"median\":null,"
		       "\"p99\":null,\"max\":null,\"mean\":null},",
		       (unsigned long long)pr->sent, (unsigned long long)pr->lost);
	}
	if (alive >= 0)
		printf("\"vhostAlive\":%s,", alive ? "true" : "false");
	if (d->o.grow_after > 0)
		printf("\"rxFramesBeforeGrow\":%llu,\"vhostWorkerCpuBeforeGrowS\":%.3f,",
		       (unsigned long long)d->rx_frames_small, d->vcpu_small);
	if (vcpu0 >= 0 && vcpu1 >= 0)
		printf("\"vhostWorkerCpuS\":%.3f,", vcpu1 - vcpu0);
	else
		printf("\"vhostWorkerCpuS\":null,");
	printf("\"cpuUserS\":%.6f,\"cpuSysS\":%.6f,\"threadUserS\":%.6f,\"threadSysS\":%.6f}\n",
	       tv_s(self.ru_utime), tv_s(self.ru_stime), tv_s(thread.ru_utime), tv_s(thread.ru_stime));
}
