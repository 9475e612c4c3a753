// SPDX-License-Identifier: GPL-2.0
/*
 * Control notifications: a netdev change (MTU, link, MAC, promiscuity,
 * allmulti) that the kernel has already applied, told to the process that
 * handles the interface through req_q and the request slots. Nothing waits
 * for that process: the ndo callbacks run under RTNL, and a stopped or slow
 * data plane must not hold every netlink user of the host behind it.
 * docs/abi.md, "Control notifications", has the protocol.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/etherdevice.h>
#include <linux/eventfd.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>

#include "kni_compat.h"
#include "kni_internal.h"

/*
 * Queue a notification on req_q (req_lock held). Its slot is seq's; req_q
 * has as many entries as there are slots, so the slot of seq + KNI_REQ_ENTRIES
 * is only written once the handler has consumed seq's entry, which it does
 * after reading the slot: a queued notification is never overwritten. A full
 * req_q (a handler that does not read) drops the notification, counted;
 * the change itself stands.
 */
static void __kni_req_queue(struct kni_dev *kd, u32 type, u32 value, const u8 *mac)
{
	struct kni_request *slot;
	bool corrupt = false;
	u32 seq;

	lockdep_assert_held(&kd->req_lock);
	if (!kni_ring_space(&kd->req_q, &corrupt)) {
		kd->req.dropped++;
		return;
	}
	seq = ++kd->req_seq;
	if (!seq)
		seq = ++kd->req_seq;
	slot = &kd->req_slots[seq & (KNI_REQ_ENTRIES - 1)];
	memset(slot, 0, sizeof(*slot));
	slot->seq = seq;
	slot->type = type;
	slot->flags = KNI_REQ_F_NOTIFY;
	slot->value = value;
	if (mac)
		ether_addr_copy(slot->mac, mac);
	kni_ring_put(&kd->req_q, seq);
	kni_ring_publish(&kd->req_q);
	kni_user_wake(kd);
	kd->req.sent++;
}

/* Tell the handler about a change that already happened; callable in atomic context. */
void kni_req_notify(struct kni_dev *kd, u32 type, u32 value, const u8 *mac)
{
	spin_lock_bh(&kd->req_lock);
	if (!kd->dead)
		__kni_req_queue(kd, type, value, mac);
	spin_unlock_bh(&kd->req_lock);
}

/* The interface is going away: no more notifications. */
void kni_req_kill(struct kni_dev *kd)
{
	spin_lock_bh(&kd->req_lock);
	WRITE_ONCE(kd->dead, true);
	spin_unlock_bh(&kd->req_lock);
}
