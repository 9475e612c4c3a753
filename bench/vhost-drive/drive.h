// SPDX-License-Identifier: MIT
/*
 * vhost-drive: what every part shares. The options, the counters the report
 * prints, the error convention (exit 1 at run time, 2 for a bad command line)
 * and the clock. The vhost driver (vring.h) and the AF_PACKET injector
 * (inject.h) both build on this; neither knows of the other.
 */
#ifndef VHOST_DRIVE_DRIVE_H
#define VHOST_DRIVE_DRIVE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frames.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vhost-drive writes ring and header fields in host order: little-endian only"
#endif

#define NS 1000000000ull

enum mode { MODE_TX, MODE_RX, MODE_PING, MODE_BOUNDS };
extern const char *const mode_names[];

struct opts {
	enum mode mode;
	int backend_fd;
	const char *tap, *inject, *vhost_dev;
	bool vhost_hdr, vnet_hdr, offload, seconds_set;
	unsigned hdr_len, frame_size, tso, mss, rx_buf, ring, ping_timeout_ms, mem_mb;
	struct flow fl;               /* addresses and ports of what we send */
	double seconds, rate;
	double kick_ms;               /* rx, bounds: kick the RX queue this often, buffers or not */
	double grow_after;            /* bounds: seconds before the RX buffers get their full size */
	unsigned long count;
};

struct stats {
	uint64_t tx_frames, tx_bytes, tx_done, rx_frames, rx_bytes, rx_bufs, rx_gso, rx_errors;
	uint64_t arp_requests, arp_replies, ctrl_drops, kicks, calls, full_waits;
	uint64_t send_errors;         /* --inject: sends refused for now (ENOBUFS, EAGAIN) */
};

/* Set by SIGINT/SIGTERM: every loop checks it, so the report still comes out. */
extern volatile sig_atomic_t stop;

/* Print "vhost-drive: <message>" to stderr and exit. die() appends the errno
 * text of the system call that just failed; fail() is a runtime failure
 * without one (status 1); usage_error() a bad command line (status 2). */
void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...);
void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...);
void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...);

uint64_t now_ns(void);

static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/*
 * --rate pacing, shared by both TX paths so that they pace alike: frames due
 * by time t of a run that started at t0 and has sent `sent` (UINT64_MAX when
 * unpaced), and when the next one is due. The +1 lets the first frame go at
 * t0 rather than one interval later.
 */
static inline uint64_t pace_allowed(double rate, uint64_t t0, uint64_t t, uint64_t sent)
{
	uint64_t due;

	if (rate <= 0)
		return UINT64_MAX;
	due = (uint64_t)((double)(t - t0) / NS * rate) + 1;
	return due > sent ? due - sent : 0;
}

static inline uint64_t pace_next(double rate, uint64_t t0, uint64_t sent)
{
	return t0 + (uint64_t)((double)sent / rate * NS);
}

#endif
