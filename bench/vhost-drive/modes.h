// SPDX-License-Identifier: MIT
/*
 * vhost-drive's modes over the vhost driver (tx, rx, ping, bounds), and the
 * one JSON report every run ends with, --inject's included.
 */
#ifndef VHOST_DRIVE_MODES_H
#define VHOST_DRIVE_MODES_H

#include "vring.h"

struct ping_result {
	double *us;                   /* round trips of the answered requests */
	size_t n, cap;
	uint64_t sent, lost;
};

bool send_arp(struct drv *d, uint16_t op, const uint8_t *tmac, const uint8_t *tip);
void idle_until(struct drv *d, uint64_t t_end, const bool *flag);
void run_tx(struct drv *d, uint64_t t0, uint64_t t_end);
bool tx_drain(struct drv *d, uint64_t timeout);
void run_ping(struct drv *d, uint64_t t_end, struct ping_result *pr);

double vhost_worker_cpu(void);
void report(struct drv *d, double seconds, const struct ping_result *pr, int alive,
	    double vcpu0, double vcpu1);

#endif
