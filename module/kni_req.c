// SPDX-License-Identifier: GPL-2.0
/*
 * Control requests: a netdev change (MTU, link, MAC, promiscuity, allmulti)
 * asked of the process that handles the interface, through req_q and the
 * request slots, and its answer on resp_q, read by the polling thread.
 * docs/abi.md, "Control requests", has the protocol.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/etherdevice.h>
#include <linux/eventfd.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>

#include "kni_compat.h"
#include "kni_internal.h"

static void kni_req_fill(struct kni_dev *kd, u32 seq, u32 type, u32 flags,
			 u32 value, const u8 *mac)
{
	struct kni_request *slot = &kd->req_slots[seq & (KNI_REQ_ENTRIES - 1)];

	memset(slot, 0, sizeof(*slot));
	slot->seq = seq;
	slot->type = type;
	slot->flags = flags;
	slot->value = value;
	if (mac)
		ether_addr_copy(slot->mac, mac);
}

/* Queue a request on req_q; returns its sequence number, or 0 if req_q is full. */
static u32 __kni_req_queue(struct kni_dev *kd, u32 type, u32 flags, u32 value,
			   const u8 *mac)
{
	bool corrupt = false;
	u32 seq;

	if (!kni_ring_space(&kd->req_q, &corrupt)) {
		kd->req.dropped++;
		return 0;
	}
	seq = ++kd->req_seq;
	if (!seq)
		seq = ++kd->req_seq;
	kni_req_fill(kd, seq, type, flags, value, mac);
	kni_ring_put(&kd->req_q, seq);
	kni_ring_publish(&kd->req_q);
	kni_user_wake(kd);
	kd->req.sent++;
	return seq;
}

/* Tell userspace about a change that already happened; callable in atomic context. */
void kni_req_notify(struct kni_dev *kd, u32 type, u32 value)
{
	spin_lock_bh(&kd->req_lock);
	if (!kd->dead)
		__kni_req_queue(kd, type, KNI_REQ_F_NOTIFY, value, NULL);
	spin_unlock_bh(&kd->req_lock);
}

/*
 * Ask userspace to accept a change and wait for its answer, at most
 * req_timeout_ms. Called under RTNL from ndo callbacks: the wait is bounded
 * and is cut short when the interface is being destroyed.
 */
int kni_req_call(struct kni_dev *kd, u32 type, u32 value, const u8 *mac)
{
	long left;
	int err;
	u32 seq;

	mutex_lock(&kd->req_mutex);
	spin_lock_bh(&kd->req_lock);
	if (kd->dead) {
		spin_unlock_bh(&kd->req_lock);
		err = -ENODEV;
		goto unlock_mutex;
	}
	seq = __kni_req_queue(kd, type, 0, value, mac);
	if (!seq) {
		spin_unlock_bh(&kd->req_lock);
		err = -EBUSY;
		goto unlock_mutex;
	}
	kd->wait_seq = seq;
	kd->wait_done = false;
	spin_unlock_bh(&kd->req_lock);

	left = wait_event_interruptible_timeout(kd->req_wq,
						READ_ONCE(kd->wait_done) ||
						READ_ONCE(kd->dead),
						msecs_to_jiffies(kni_req_timeout_ms));

	spin_lock_bh(&kd->req_lock);
	if (kd->wait_done) {
		err = kd->wait_result;
	} else if (kd->dead) {
		err = -ENODEV;
	} else if (left < 0) {
		err = -EINTR;
	} else {
		kd->req.timeout++;
		err = -ETIMEDOUT;
	}
	kd->wait_seq = 0;
	kd->wait_done = false;
	spin_unlock_bh(&kd->req_lock);
unlock_mutex:
	mutex_unlock(&kd->req_mutex);
	return err;
}

/* Polling thread: match answers on resp_q with the waiting request. */
bool kni_resp_poll(struct kni_dev *kd)
{
	bool corrupt = false;
	u32 n, i;

	n = kni_ring_avail(&kd->resp_q, &corrupt);
	if (corrupt) {
		u64_stats_update_begin(&kd->rx.syncp);
		kd->rx.fifo_corrupt++;
		u64_stats_update_end(&kd->rx.syncp);
	}
	if (!n)
		return false;

	spin_lock_bh(&kd->req_lock);
	for (i = 0; i < n; i++) {
		u32 seq = kni_ring_peek(&kd->resp_q, i);
		struct kni_request *slot;
		s32 result;

		if (!seq || seq != kd->wait_seq || kd->wait_done) {
			kd->req.stale++;
			continue;
		}
		slot = &kd->req_slots[seq & (KNI_REQ_ENTRIES - 1)];
		result = READ_ONCE(slot->result);
		/* Only 0 or an errno; anything else is a protocol error. */
		if (result > 0 || result < -MAX_ERRNO)
			result = -EPROTO;
		kd->wait_result = result;
		WRITE_ONCE(kd->wait_done, true);
	}
	kni_ring_consume(&kd->resp_q, n);
	spin_unlock_bh(&kd->req_lock);
	wake_up_interruptible(&kd->req_wq);
	return true;
}
