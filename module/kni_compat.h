/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels kni.ko builds for (6.1 and 6.12), as
 * probed in their headers by Kbuild.
 */
#ifndef KNI_COMPAT_H
#define KNI_COMPAT_H

#include <linux/netdevice.h>

/* 6.5 moved the GSO declarations out of netdevice.h. */
#ifdef KNI_HAVE_NET_GSO_H
#include <net/gso.h>
#endif

/* 6.12 moved asm/unaligned.h to linux/unaligned.h. */
#ifdef KNI_HAVE_LINUX_UNALIGNED_H
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

/* 6.5 removed proto_ops.sendpage in favour of sendmsg(MSG_SPLICE_PAGES). */
#ifdef KNI_HAVE_SENDPAGE
#define KNI_SOCK_NO_SENDPAGE	.sendpage = sock_no_sendpage,
#else
#define KNI_SOCK_NO_SENDPAGE
#endif

/* 6.8 dropped eventfd_signal()'s count argument (it was always 1 here). */
#ifdef KNI_HAVE_EVENTFD_SIGNAL_NOCOUNT
#define kni_eventfd_signal(ctx)	eventfd_signal(ctx)
#else
#define kni_eventfd_signal(ctx)	eventfd_signal(ctx, 1)
#endif

/* 6.2 named the directions of an iov_iter ITER_SOURCE and ITER_DEST. */
#include <linux/uio.h>
#ifndef ITER_SOURCE
#define ITER_SOURCE	WRITE
#endif

/* 6.3 made vma->vm_flags read-only behind vm_flags_set() and vm_flags_clear(). */
#include <linux/mm.h>
#ifdef KNI_HAVE_VM_FLAGS_SET
#define kni_vm_flags_set(vma, f)	vm_flags_set(vma, f)
#define kni_vm_flags_clear(vma, f)	vm_flags_clear(vma, f)
#else
#define kni_vm_flags_set(vma, f)	((vma)->vm_flags |= (f))
#define kni_vm_flags_clear(vma, f)	((vma)->vm_flags &= ~(f))
#endif

#endif /* KNI_COMPAT_H */
