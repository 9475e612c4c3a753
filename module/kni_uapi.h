/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * kniv's userspace ABI for /dev/kni.
 *
 * This is kniv's own ABI. It is not binary compatible with DPDK's
 * rte_kni_common.h and never will be. Every argument structure starts with
 * a size field that the caller sets to sizeof() the structure it was built
 * against; reserved fields must be zero so that they can gain a meaning later.
 * docs/abi.md describes the same contract with drawings.
 *
 * Shared memory: each interface owns one region that the kernel allocates and
 * userspace maps with mmap() on the /dev/kni file descriptor at the offset
 * KNI_IOCTL_CREATE returns. The region holds six FIFOs and a pool of packet
 * buffers. FIFO entries are buffer indices (data FIFOs) or request sequence
 * numbers (req_q, resp_q), never addresses. The kernel validates every index,
 * offset and length it reads from the region.
 */
/*
 * Per-interface sysfs attributes in /sys/class/net/<name>/ (writing needs
 * CAP_NET_ADMIN in the interface's network namespace):
 *
 *   sock_en   0 or 1. Writing 1 creates the interface's KNI socket (the
 *             vhost-net backend) and installs a descriptor for it, without
 *             O_CLOEXEC, in the writing process; -EBUSY if a socket is
 *             attached. Writing 0 detaches the socket from the interface.
 *   sock_fd   the descriptor's number in the process that wrote sock_en,
 *             or -1.
 *   vnet_hdr  0 or 1: whether the socket carries virtio-net headers. Set
 *             from the vnet_hdr module parameter at create; -EBUSY while a
 *             socket is attached.
 */
#ifndef KNI_UAPI_H
#define KNI_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KNI_DEVICE_PATH		"/dev/kni"
#define KNI_ABI_VERSION		5

/* Values of the kthread_mode module parameter, as reported by KNI_IOCTL_INFO. */
#define KNI_KTHREAD_SINGLE	0
#define KNI_KTHREAD_MULTIPLE	1

/* struct kni_info - what the loaded module is, how it was configured, what is live */
struct kni_info {
	__u32 size;		/* in: sizeof(struct kni_info) */
	__u32 abi_version;	/* out: KNI_ABI_VERSION */
	__u32 kthread_mode;	/* out: KNI_KTHREAD_* */
	__u32 ifaces;		/* out: interfaces alive, all openers together */
	__u64 shm_bytes;	/* out: shared memory still allocated, mapped or not */
	__u32 threads;		/* out: kernel threads running */
	__u32 sockets;		/* out: KNI sockets alive, attached or not */
};

#define KNI_NAMESIZE		16	/* IFNAMSIZ, NUL included */
#define KNI_STRSIZE		32	/* ethtool driver info strings, NUL included */

/* Bounds checked by KNI_IOCTL_CREATE (-EINVAL outside them). */
#define KNI_FIFO_MIN_ENTRIES	16		/* power of two */
#define KNI_FIFO_MAX_ENTRIES	65536		/* power of two */
#define KNI_REQ_ENTRIES		16		/* req_q, resp_q and request slots */
#define KNI_BUF_HDR_SIZE	64		/* struct kni_buf, padded */
#define KNI_BUF_MIN_SIZE	256		/* multiple of 64 */
#define KNI_BUF_MAX_SIZE	65536		/* multiple of 64 */
#define KNI_BUF_MAX_COUNT	65536
#define KNI_REGION_MAX_SIZE	(64u << 20)	/* whole region, bytes */

/* struct kni_create.flags */
#define KNI_CREATE_F_BIND	0x00000001u	/* bind the kernel thread to .cpu */
#define KNI_CREATE_F_DOORBELL	0x00000002u	/* doorbells: see struct kni_doorbell */
/*
 * The handler finishes offloads: the netdev offers SG, checksum and TSO to
 * its stack, and what it sends reaches tx_q as the stack left it (a partial
 * checksum, a TCP super-frame), described in the head as for the socket.
 * Without it every tx_q frame is complete.
 */
#define KNI_CREATE_F_OFFLOADS	0x00000004u

/*
 * struct kni_create - argument of KNI_IOCTL_CREATE
 *
 * "in" fields are read; "out" fields are ignored on input and filled on
 * success. A zero mtu, min_mtu or max_mtu selects the default (1500, 68,
 * the largest frame a buffer holds). An all-zero mac selects a random one.
 * Strings must be NUL-terminated inside their array; name must be a valid
 * interface name without '%' and not already used in the caller's network
 * namespace (-EEXIST).
 */
struct kni_create {
	__u32 size;			/* in: sizeof(struct kni_create) */
	__u32 flags;			/* in: KNI_CREATE_F_* */
	char name[KNI_NAMESIZE];	/* in */
	__u8 mac[6];			/* in/out */
	__u16 reserved0;		/* in: zero */
	__u32 mtu;			/* in/out */
	__u32 min_mtu;			/* in/out: >= 68 */
	__u32 max_mtu;			/* in/out: a frame of max_mtu + 18 bytes fits a buffer */
	__u32 fifo_entries;		/* in: rx_q, tx_q, alloc_q, free_q size */
	__u32 buf_count;		/* in: buffers in the pool */
	__u32 buf_size;			/* in: bytes per buffer, header included */
	__u32 cpu;			/* in: CPU of the kernel thread with F_BIND */
	__u32 reserved1;		/* in: zero */
	char drv_name[KNI_STRSIZE];	/* in: optional, ethtool -i driver */
	char drv_version[KNI_STRSIZE];	/* in: optional, ethtool -i version */
	char bus_info[KNI_STRSIZE];	/* in: optional, ethtool -i bus-info */
	char fw_version[KNI_STRSIZE];	/* in: optional, ethtool -i firmware-version */
	__u32 id;			/* out: interface id, argument of RELEASE */
	__u32 ifindex;			/* out */
	__u64 mmap_offset;		/* out: mmap() offset of the region */
	__u64 mmap_size;		/* out: mmap() length of the region */
	__u32 rx_q_off;			/* out: offsets inside the region */
	__u32 tx_q_off;
	__u32 alloc_q_off;
	__u32 free_q_off;
	__u32 req_q_off;
	__u32 resp_q_off;
	__u32 req_slots_off;		/* KNI_REQ_ENTRIES struct kni_request */
	__u32 bufs_off;			/* buf_count buffers of buf_size bytes */
	__u32 doorbell_off;		/* out: struct kni_doorbell */
	__u32 reserved[7];		/* in: zero; out: zero */
};

/* struct kni_release - argument of KNI_IOCTL_RELEASE */
struct kni_release {
	__u32 size;		/* in: sizeof(struct kni_release) */
	__u32 id;		/* in: kni_create.id, of an interface this fd created */
	__u32 reserved[2];	/* in: zero */
};

/*
 * struct kni_attach - argument of KNI_IOCTL_ATTACH
 *
 * Makes the calling file the handler of an interface that another
 * file created (looked up by name in the caller's network namespace): it may
 * then mmap() the interface's region exactly like the creator. One handler
 * file per interface at a time (-EBUSY); the creator's own file cannot attach
 * (-EINVAL); a name that is not a KNI interface is -ENODEV. The attachment
 * ends with KNI_IOCTL_DETACH, when the handler file is released, or when the
 * interface is removed; mappings stay valid until munmap() in every case.
 */
struct kni_attach {
	__u32 size;			/* in: sizeof(struct kni_attach) */
	__u32 reserved0;		/* in: zero */
	char name[KNI_NAMESIZE];	/* in */
	__u32 id;			/* out: for mmap() and KNI_IOCTL_DETACH */
	__u32 fifo_entries;		/* out: as created */
	__u32 buf_count;		/* out */
	__u32 buf_size;			/* out */
	__u64 mmap_offset;		/* out */
	__u64 mmap_size;		/* out */
	__u32 rx_q_off;			/* out: as in struct kni_create */
	__u32 tx_q_off;
	__u32 alloc_q_off;
	__u32 free_q_off;
	__u32 req_q_off;
	__u32 resp_q_off;
	__u32 req_slots_off;
	__u32 bufs_off;
	__u32 doorbell_off;		/* out */
	__u32 flags;			/* out: the creator's KNI_CREATE_F_* */
	__u32 reserved[6];		/* in: zero; out: zero */
};

#define KNI_IOC_MAGIC		0xCE
#define KNI_IOCTL_INFO		_IOWR(KNI_IOC_MAGIC, 0x00, struct kni_info)
#define KNI_IOCTL_CREATE	_IOWR(KNI_IOC_MAGIC, 0x01, struct kni_create)
#define KNI_IOCTL_RELEASE	_IOWR(KNI_IOC_MAGIC, 0x02, struct kni_release)
#define KNI_IOCTL_ATTACH	_IOWR(KNI_IOC_MAGIC, 0x03, struct kni_attach)
/* kni_release.id is an id this file attached to */
#define KNI_IOCTL_DETACH	_IOWR(KNI_IOC_MAGIC, 0x04, struct kni_release)
/*
 * Ring the kernel's doorbell of interface kni_release.id (created or attached
 * by this file): its polling thread wakes up. -ENOENT for any other id.
 */
#define KNI_IOCTL_KICK		_IOWR(KNI_IOC_MAGIC, 0x05, struct kni_release)

/*
 * struct kni_notify - argument of KNI_IOCTL_NOTIFY
 *
 * Registers an eventfd that the kernel signals after it produces on tx_q or
 * req_q of interface id while kni_doorbell.user_sleeping is non-zero; fd -1
 * removes it. One eventfd per interface: the last NOTIFY wins. Any file that
 * created or attached the interface may set it; one eventfd may serve many
 * interfaces. It stays registered until replaced or the interface is gone.
 */
struct kni_notify {
	__u32 size;		/* in: sizeof(struct kni_notify) */
	__u32 id;		/* in: an interface this file created or attached */
	__s32 fd;		/* in: an eventfd, or -1 */
	__u32 reserved;		/* in: zero */
};

#define KNI_IOCTL_NOTIFY	_IOWR(KNI_IOC_MAGIC, 0x06, struct kni_notify)

/*
 * struct kni_socket - argument of KNI_IOCTL_SOCKET
 *
 * Creates the KNI socket of interface id (created or attached by this file),
 * exactly as writing 1 to its sock_en does, and returns its new descriptor
 * as the ioctl's value: marked close-on-exec with KNI_SOCKET_F_CLOEXEC,
 * inheritable without. -EBUSY while the interface has a socket, -ENOENT for
 * an id this file neither created nor attached, -EINVAL for a bad size,
 * unknown flags or non-zero reserved words. Afterwards sock_en reads 1 and
 * sock_fd the descriptor's number, as after a sysfs enable.
 */
struct kni_socket {
	__u32 size;		/* in: sizeof(struct kni_socket) */
	__u32 id;		/* in */
	__u32 flags;		/* in: KNI_SOCKET_F_* */
	__u32 reserved[5];	/* in: zero */
};

#define KNI_SOCKET_F_CLOEXEC	0x00000001u

#define KNI_IOCTL_SOCKET	_IOW(KNI_IOC_MAGIC, 0x07, struct kni_socket)

/*
 * struct kni_fifo - a single-producer single-consumer ring in the region
 *
 * write and read are free-running counters: the ring holds write - read
 * entries (0 = empty, entries = full; every slot is usable) and slot i is
 * ring[i & (entries - 1)]. The producer fills slots and then publishes write
 * with a release store; the consumer loads write with an acquire load, reads
 * the slots, then publishes read with a release store; and the mirror image
 * for the producer reading read. The kernel keeps its own counter privately
 * and never reads it back from the region; a peer counter that claims more
 * than the ring size is ignored and counted as fifo_corrupt.
 *
 * rx_q    user -> kernel  buffers with a frame for the Linux stack
 * free_q  kernel -> user  buffers the kernel is done with (from rx_q)
 * alloc_q user -> kernel  empty buffers the kernel may fill
 * tx_q    kernel -> user  buffers with a frame the Linux stack sent
 * req_q   kernel -> user  sequence numbers of control notifications
 * resp_q  unused since ABI 5 (the kernel never reads it); keeps its place
 */
struct kni_fifo {
	__u32 write;		/* written by the producer only */
	__u32 entries;		/* written by the kernel at create, informative */
	__u32 pad0[14];
	__u32 read;		/* written by the consumer only */
	__u32 pad1[15];
	__u32 ring[];
};

/*
 * struct kni_buf - header at the start of every buffer (ABI 5)
 *
 * A frame is one buffer or a chain of them: the buffer whose index is on a
 * FIFO (the head) holds the first data_len bytes at data_off, and next names
 * the following buffer as index + 1 (0: the last). Every buffer of a chain
 * has its own data_off/data_len with data_off >= KNI_BUF_HDR_SIZE and
 * data_off + data_len <= buf_size. A frame is at most KNI_FRAME_MAX bytes in
 * at most KNI_BUF_MAX_CHAIN buffers, and at least 14 (an Ethernet header)
 * in its head. Only the head carries flags and the offload fields below, and
 * only the head's index travels on rx_q, tx_q and free_q: the consumer walks
 * next. alloc_q holds single buffers; the kernel links them.
 *
 * The offload fields have the meaning and values of struct virtio_net_hdr:
 *  - KNI_BUF_F_NEEDS_CSUM: the checksum at csum_start + csum_offset holds
 *    the pseudo-header sum and the sum from csum_start on completes it;
 *  - gso_type KNI_GSO_TCPV4/TCPV6 (| KNI_GSO_ECN): a super-frame to be cut
 *    into segments of gso_size payload bytes (always with NEEDS_CSUM);
 *    hdr_len is informative, as in virtio.
 * A zeroed header past data_off/data_len is a single-buffer frame with no
 * offload: what ABI 4 had.
 *
 * rx_q (user -> kernel): a frame the kernel cannot accept (bad index,
 * offset, length, chain or offload fields) is dropped and counted; its head
 * goes back on free_q unless the head index itself is bad. The kernel never
 * writes an rx_q buffer. tx_q (kernel -> user): the kernel writes every
 * field, frame_len included, and zeroes the rest.
 */
struct kni_buf {
	__u32 data_off;		/* this buffer's bytes of the frame */
	__u32 data_len;
	__u32 flags;		/* head: KNI_BUF_F_* */
	__u32 next;		/* 1 + index of the next buffer; 0: the last */
	__u32 frame_len;	/* head, tx_q: the whole frame; ignored on rx_q */
	__u16 gso_size;		/* head: payload bytes per segment */
	__u8 gso_type;		/* head: KNI_GSO_* */
	__u8 pad0;
	__u16 csum_start;	/* head, with KNI_BUF_F_NEEDS_CSUM */
	__u16 csum_offset;
	__u16 hdr_len;		/* head: L2-L4 header bytes (informative) */
	__u16 pad1;
	__u32 reserved[8];
};

/* Largest frame: 64 KiB of IP behind an Ethernet header with one VLAN tag. */
#define KNI_FRAME_MAX		(65535 + 18)
/* Most buffers one frame may chain (a 64 KiB frame in 256-byte buffers). */
#define KNI_BUF_MAX_CHAIN	512
/* Most segments a GSO frame may cut into: DIV_ROUND_UP(length, gso_size). */
#define KNI_GSO_MAX_SEGS	256

/*
 * The frame's L3/L4 checksums were verified (or computed) by whoever gave it
 * to the data plane: the stack gets CHECKSUM_UNNECESSARY, a guest behind the
 * KNI socket with VNET_HDR gets VIRTIO_NET_HDR_F_DATA_VALID.
 */
#define KNI_BUF_F_CSUM_VALID	0x00000001u
/* A partial checksum to complete: csum_start, csum_offset (virtio NEEDS_CSUM). */
#define KNI_BUF_F_NEEDS_CSUM	0x00000002u

/* struct kni_buf.gso_type: the values of VIRTIO_NET_HDR_GSO_* */
#define KNI_GSO_NONE		0
#define KNI_GSO_TCPV4		1
#define KNI_GSO_TCPV6		4
#define KNI_GSO_ECN		0x80

/* struct kni_request.type */
#define KNI_REQ_MTU		1	/* value: new MTU */
#define KNI_REQ_LINK		2	/* value: 1 up, 0 down */
#define KNI_REQ_MAC		3	/* mac: new address */
#define KNI_REQ_PROMISC		4	/* value: 1 on, 0 off */
#define KNI_REQ_ALLMULTI	5	/* value: 1 on, 0 off */

/* struct kni_request.flags */
#define KNI_REQ_F_NOTIFY	0x00000001u	/* already done (always, since ABI 5) */

/*
 * struct kni_request - one control notification slot
 *
 * A netdev change has been applied when it is notified: nothing waits for
 * userspace (the ndo callbacks run under RTNL). The kernel writes slot
 * seq % KNI_REQ_ENTRIES, then puts seq on req_q. Userspace reads the slot
 * *before* it consumes the req_q entry: the kernel writes a slot again only
 * for seq + KNI_REQ_ENTRIES, which needs that entry's room. With req_q full
 * a notification is dropped (ethtool req_dropped) and the change stands.
 */
struct kni_request {
	__u32 seq;		/* kernel: never 0 */
	__u32 type;		/* kernel: KNI_REQ_* */
	__u32 flags;		/* kernel: KNI_REQ_F_* */
	__u32 value;		/* kernel */
	__u8 mac[6];		/* kernel */
	__u8 pad[2];
	__s32 result;		/* unused since ABI 5; the kernel writes 0 */
	__u32 reserved[9];
};

/*
 * struct kni_doorbell - sleeping and waking, at doorbell_off in the region
 *
 * Only for an interface created with KNI_CREATE_F_DOORBELL; without it the
 * kernel thread polls at poll_interval_us for as long as the interface lives
 * and never signals an eventfd.
 *
 * Kernel side. After a while without work the polling thread sets
 * kernel_sleeping, issues a full barrier, looks at rx_q once more and, if
 * it is empty, sleeps until KNI_IOCTL_KICK. A producer on rx_q therefore
 * publishes write, issues a full barrier (seq_cst fence), reads
 * kernel_sleeping, and kicks if it is non-zero. One of the two always sees
 * the other's store, so no frame waits for a kick that never comes. In
 * kthread_mode=single the thread sleeps only while every interface it
 * serves has doorbells.
 *
 * User side, mirrored. The consumer of tx_q and req_q sets user_sleeping,
 * issues a full barrier, looks at tx_q and req_q once more and, if both are
 * empty, waits on the eventfd registered with KNI_IOCTL_NOTIFY. The kernel
 * publishes write, issues a full barrier, reads user_sleeping, and signals
 * the eventfd if it is non-zero. The kernel never trusts user_sleeping for
 * anything but whether to signal; userspace clears it when it wakes.
 */
struct kni_doorbell {
	__u32 kernel_sleeping;	/* written by the kernel only */
	/*
	 * Written by the kernel only: a KNI socket writer waits for room on
	 * tx_q and alloc_q. The consumer of tx_q publishes what it consumed
	 * and gave, issues a full barrier, reads this, and kicks if non-zero.
	 */
	__u32 kernel_tx_wait;
	__u32 pad0[14];
	__u32 user_sleeping;	/* written by userspace only */
	__u32 pad1[15];
};

#endif /* KNI_UAPI_H */
