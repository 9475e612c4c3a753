/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * kniv's userspace ABI for /dev/kni.
 *
 * This is kniv's own ABI. It is not binary compatible with DPDK's
 * rte_kni_common.h and never will be. Every argument structure starts with
 * a size field that the caller sets to sizeof() the structure it was built
 * against; reserved fields must be zero so that they can gain a meaning later.
 */
#ifndef KNI_UAPI_H
#define KNI_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KNI_DEVICE_PATH		"/dev/kni"
#define KNI_ABI_VERSION		1

/* Values of the kthread_mode module parameter, as reported by KNI_IOCTL_INFO. */
#define KNI_KTHREAD_SINGLE	0
#define KNI_KTHREAD_MULTIPLE	1

/* struct kni_info - what the loaded module is and how it was configured */
struct kni_info {
	__u32 size;		/* in: sizeof(struct kni_info) */
	__u32 abi_version;	/* out: KNI_ABI_VERSION */
	__u32 kthread_mode;	/* out: KNI_KTHREAD_* */
	__u32 reserved[5];	/* in: zero; out: zero */
};

#define KNI_IOC_MAGIC		0xCE
#define KNI_IOCTL_INFO		_IOWR(KNI_IOC_MAGIC, 0x00, struct kni_info)

#endif /* KNI_UAPI_H */
