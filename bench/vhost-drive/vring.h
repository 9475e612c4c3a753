// SPDX-License-Identifier: MIT
/*
 * vhost-drive's virtio-net driver: the guest memory region, the two split
 * rings (RX queue 0, TX queue 1), their eventfds, and the vhost-net device
 * they are registered with. One descriptor per buffer, descriptor i always
 * pointing at buffer i, so posting a buffer is writing its length and its id.
 */
#ifndef VHOST_DRIVE_VRING_H
#define VHOST_DRIVE_VRING_H

#include <linux/virtio_ring.h>

#include "drive.h"

#define HEAD_MAX 256          /* bytes of each received frame kept for parsing */
#define GROW_BUF 2048         /* --grow-after: what each RX buffer really holds */

enum kind { KIND_NONE, KIND_DATA, KIND_CTRL };  /* what a TX buffer holds */

struct ring {
	unsigned num, mask;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;           /* our shadow of avail->idx */
	uint16_t used_seen;           /* next used entry to read */
	int kick, call, err;          /* eventfds */
	uint8_t *buf;                 /* num buffers of buf_size bytes, buffer i = descriptor i */
	size_t buf_size;
};

struct drv {
	struct opts o;
	int vhost, backend;
	uint64_t features;
	unsigned hlen;                /* virtio-net header on each buffer */
	bool mrg;
	uint8_t *mem;
	size_t mem_size, mem_used;
	struct ring rx, tx;
	uint16_t *tx_free;            /* stack of free TX descriptor ids */
	unsigned tx_nfree;
	uint8_t *tx_kind;
	size_t data_len;              /* Ethernet bytes of a data frame */
	uint32_t tcp_seq;
	uint8_t head[HEAD_MAX];       /* the received frame being reassembled */
	size_t head_fill, frame_total;
	unsigned frame_bufs, frame_nbufs;
	/* the mode's state, read by frame_in() */
	uint16_t ping_id, ping_seq;
	bool ping_waiting, ping_got, arp_got;
	uint64_t ping_t1;
	uint64_t next_kick;           /* --kick-ms: when the RX queue is kicked next */
	/* --grow-after: what the hostile phase saw */
	uint64_t rx_frames_small;
	double vcpu_small;
	struct stats s;
};

/* The backend vhost-net reads and writes: a TAP we open, or an inherited fd. */
int open_tap(const struct opts *o);
void setup_backend_hdr(struct drv *d);

void mem_setup(struct drv *d, size_t tx_buf);
void vhost_setup(struct drv *d);

void ring_publish(struct drv *d, struct ring *r);
void ring_kick(struct drv *d, struct ring *r);
void rx_grow(struct drv *d);

unsigned tx_reclaim(struct drv *d);
int tx_take(struct drv *d);
void tx_data(struct drv *d, uint16_t id);
void tx_ctrl_post(struct drv *d, int id, const uint8_t *frame, size_t len);

void wait_calls(struct drv *d, uint64_t timeout_ns, bool tx_irq);
unsigned rx_poll(struct drv *d);

/* Defined by the modes (modes.c): a complete received frame, cap bytes of it
 * (at most HEAD_MAX less the header) at f; rx_poll() has counted it. */
void frame_in(struct drv *d, const uint8_t *f, size_t cap);

#endif
