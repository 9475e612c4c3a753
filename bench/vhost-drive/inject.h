// SPDX-License-Identifier: MIT
/*
 * vhost-drive --inject: the far end without vhost. An AF_PACKET socket sends
 * the data frames the vhost TX path builds into an interface, so that a
 * driver instance at the other end of a veth can be measured receiving.
 */
#ifndef VHOST_DRIVE_INJECT_H
#define VHOST_DRIVE_INJECT_H

#include "drive.h"

int inject_open(const char *ifname);
void inject_tx(int fd, const struct opts *o, struct stats *s, uint64_t t0, uint64_t t_end);

#endif
