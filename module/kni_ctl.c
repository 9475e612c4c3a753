// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kni: the control device. Every ioctl argument is copied in whole,
 * checked for its size and reserved fields, and only then acted upon.
 *
 * Lifetime: an open file owns the interfaces created through it
 * (struct kni_ctx). They go away on KNI_IOCTL_RELEASE or when the file is
 * released, which happens once every descriptor and every mapping of it is
 * gone (a mapping holds a file reference), process exit included.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nsproxy.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <net/net_namespace.h>

#include "kni_internal.h"

static_assert(sizeof(struct kni_info) == 32);
static_assert(sizeof(struct kni_create) == 280);
static_assert(sizeof(struct kni_release) == 16);
static_assert(sizeof(struct kni_attach) == 120);
static_assert(sizeof(struct kni_notify) == 16);

/* Serialises attach, detach and the end of an interface: kni_dev.handler, .ready. */
static DEFINE_MUTEX(kni_attach_lock);
static_assert(sizeof(struct kni_fifo) == 128);
static_assert(sizeof(struct kni_buf) == KNI_BUF_HDR_SIZE);
static_assert(sizeof(struct kni_request) == 64);
static_assert(sizeof(struct kni_doorbell) == 128);

static bool kni_all_zero(const __u32 *words, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (words[i])
			return false;
	return true;
}

static long kni_ioctl_info(void __user *uarg)
{
	struct kni_info info;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.size != sizeof(info))
		return -EINVAL;

	info.abi_version = KNI_ABI_VERSION;
	info.kthread_mode = kni_kthread_mode;
	info.ifaces = atomic_read(&kni_live_ifaces);
	info.shm_bytes = atomic64_read(&kni_shm_bytes);
	info.threads = atomic_read(&kni_live_threads);
	info.sockets = atomic_read(&kni_live_socks);

	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/*
 * Take kd off its creator's list, if it is still there: whoever does
 * destroys it, exactly once (RELEASE, the creator's close, a dying network
 * namespace, a failed CREATE).
 */
static bool kni_ctx_take(struct kni_ctx *ctx, struct kni_dev *kd)
{
	bool listed;

	mutex_lock(&ctx->lock);
	listed = kd->listed;
	if (listed) {
		list_del_init(&kd->ctx_node);
		kd->listed = false;
	}
	mutex_unlock(&ctx->lock);
	return listed;
}

/*
 * CREATE needs CAP_NET_ADMIN in the user namespace that owns the opener's
 * network namespace, where the interface will live: root in a container
 * with its own user and network namespaces may, as with tun.
 */
static bool kni_may_create(const struct kni_ctx *ctx)
{
	return ns_capable(ctx->net->user_ns, CAP_NET_ADMIN);
}

/*
 * ATTACH to another opener's interface: the same effective uid as its
 * creator, or CAP_NET_ADMIN over the interface's network namespace.
 */
static bool kni_may_attach(const struct kni_dev *kd)
{
	return uid_eq(current_euid(), kd->owner_uid) ||
	       ns_capable(dev_net(kd->netdev)->user_ns, CAP_NET_ADMIN);
}

static long kni_ioctl_create(struct kni_ctx *ctx, void __user *uarg)
{
	struct kni_create req;
	struct kni_dev *kd;

	if (!kni_may_create(ctx))
		return -EPERM;
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.size != sizeof(req) || req.reserved0 || req.reserved1 ||
	    !kni_all_zero(req.reserved, ARRAY_SIZE(req.reserved)))
		return -EINVAL;

	kd = kni_dev_create(ctx, &req);
	if (IS_ERR(kd))
		return PTR_ERR(kd);

	mutex_lock(&kni_attach_lock);
	mutex_lock(&ctx->lock);
	list_add_tail(&kd->ctx_node, &ctx->devs);
	kd->listed = true;
	mutex_unlock(&ctx->lock);
	kd->ready = true;
	mutex_unlock(&kni_attach_lock);

	/* Outside ctx->lock: a fault here takes mmap_lock, and mmap takes ctx->lock. */
	if (copy_to_user(uarg, &req, sizeof(req))) {
		/* Unless its namespace took it meanwhile (kni_net_pre_exit()). */
		if (kni_ctx_take(ctx, kd))
			kni_dev_destroy(kd);
		return -EFAULT;
	}
	return 0;
}

/* An interface ctx created; ctx->lock held. */
static struct kni_dev *__kni_ctx_find(struct kni_ctx *ctx, u32 id)
{
	struct kni_dev *kd;

	list_for_each_entry(kd, &ctx->devs, ctx_node)
		if (kd->id == id)
			return kd;
	return NULL;
}

/* ctx's attachment to interface id; ctx->lock held. */
static struct kni_link *__kni_ctx_find_link(struct kni_ctx *ctx, u32 id)
{
	struct kni_link *link;

	list_for_each_entry(link, &ctx->links, node)
		if (link->kd->id == id)
			return link;
	return NULL;
}

/* An interface ctx created or is attached to; ctx->lock held. */
static struct kni_dev *__kni_ctx_find_mappable(struct kni_ctx *ctx, u32 id)
{
	struct kni_link *link = __kni_ctx_find_link(ctx, id);

	return link ? link->kd : __kni_ctx_find(ctx, id);
}

/* The interface ctx is attached to as id, or NULL; kni_attach_lock held. */
static struct kni_dev *kni_find_attached(struct kni_ctx *ctx, u32 id)
{
	struct kni_link *link;

	mutex_lock(&ctx->lock);
	link = __kni_ctx_find_link(ctx, id);
	mutex_unlock(&ctx->lock);
	return link ? link->kd : NULL;
}

/* End kd's attachment, if any; kni_attach_lock held. Returns the link to free. */
static struct kni_link *__kni_unlink(struct kni_dev *kd)
{
	struct kni_ctx *handler = kd->handler;
	struct kni_link *link;

	if (!handler)
		return NULL;
	mutex_lock(&handler->lock);
	link = __kni_ctx_find_link(handler, kd->id);
	if (link)
		list_del(&link->node);
	mutex_unlock(&handler->lock);
	kd->handler = NULL;
	return link;
}

/* Called first when kd is destroyed: no attach from now on, and none left. */
void kni_ctl_unlink(struct kni_dev *kd)
{
	struct kni_link *link;

	mutex_lock(&kni_attach_lock);
	kd->ready = false;
	link = __kni_unlink(kd);
	mutex_unlock(&kni_attach_lock);
	kfree(link);
}

static void kni_attach_fill(struct kni_attach *at, const struct kni_dev *kd)
{
	const struct kni_create *l = &kd->layout;

	at->id = kd->id;
	at->fifo_entries = l->fifo_entries;
	at->buf_count = l->buf_count;
	at->buf_size = l->buf_size;
	at->mmap_offset = l->mmap_offset;
	at->mmap_size = l->mmap_size;
	at->rx_q_off = l->rx_q_off;
	at->tx_q_off = l->tx_q_off;
	at->alloc_q_off = l->alloc_q_off;
	at->free_q_off = l->free_q_off;
	at->req_q_off = l->req_q_off;
	at->resp_q_off = l->resp_q_off;
	at->req_slots_off = l->req_slots_off;
	at->bufs_off = l->bufs_off;
	at->doorbell_off = l->doorbell_off;
	at->flags = l->flags;
}

static long kni_ioctl_attach(struct kni_ctx *ctx, void __user *uarg)
{
	struct net_device *dev;
	struct kni_attach at;
	struct kni_link *link;
	struct kni_dev *kd;
	int err;

	if (copy_from_user(&at, uarg, sizeof(at)))
		return -EFAULT;
	if (at.size != sizeof(at) || at.reserved0 ||
	    !kni_all_zero(at.reserved, ARRAY_SIZE(at.reserved)) ||
	    !memchr(at.name, '\0', sizeof(at.name)))
		return -EINVAL;

	link = kzalloc(sizeof(*link), GFP_KERNEL);
	if (!link)
		return -ENOMEM;

	mutex_lock(&kni_attach_lock);
	dev = dev_get_by_name(ctx->net, at.name);
	kd = dev ? kni_dev_from_netdev(dev) : NULL;
	if (!kd || !kd->ready)
		err = -ENODEV;
	else if (kd->owner == ctx)
		err = -EINVAL;
	else if (!kni_may_attach(kd))
		err = -EPERM;
	else if (kd->handler)
		err = -EBUSY;
	else
		err = 0;
	if (!err) {
		link->kd = kd;
		kd->handler = ctx;
		mutex_lock(&ctx->lock);
		list_add_tail(&link->node, &ctx->links);
		mutex_unlock(&ctx->lock);
		kni_attach_fill(&at, kd);
	}
	mutex_unlock(&kni_attach_lock);
	if (dev)
		dev_put(dev);
	if (err) {
		kfree(link);
		return err;
	}

	if (copy_to_user(uarg, &at, sizeof(at))) {
		/* Undo, unless the interface went away meanwhile and took the link along. */
		mutex_lock(&kni_attach_lock);
		kd = kni_find_attached(ctx, at.id);
		if (kd)
			link = __kni_unlink(kd);
		else
			link = NULL;
		mutex_unlock(&kni_attach_lock);
		kfree(link);
		return -EFAULT;
	}
	return 0;
}

/* Copy in and check the struct kni_release of RELEASE, DETACH and KICK. */
static long kni_copy_release(struct kni_release *rel, void __user *uarg)
{
	if (copy_from_user(rel, uarg, sizeof(*rel)))
		return -EFAULT;
	if (rel->size != sizeof(*rel) ||
	    !kni_all_zero(rel->reserved, ARRAY_SIZE(rel->reserved)))
		return -EINVAL;
	return 0;
}

static long kni_ioctl_detach(struct kni_ctx *ctx, void __user *uarg)
{
	struct kni_link *link = NULL;
	struct kni_release rel;
	struct kni_dev *kd;
	long err;

	err = kni_copy_release(&rel, uarg);
	if (err)
		return err;

	mutex_lock(&kni_attach_lock);
	kd = kni_find_attached(ctx, rel.id);
	if (kd)
		link = __kni_unlink(kd);
	mutex_unlock(&kni_attach_lock);
	kfree(link);
	return kd ? 0 : -ENOENT;
}

static long kni_ioctl_release(struct kni_ctx *ctx, void __user *uarg)
{
	struct kni_release rel;
	struct kni_dev *kd;
	long err;

	err = kni_copy_release(&rel, uarg);
	if (err)
		return err;

	mutex_lock(&ctx->lock);
	kd = __kni_ctx_find(ctx, rel.id);
	if (kd) {
		list_del_init(&kd->ctx_node);
		kd->listed = false;
	}
	mutex_unlock(&ctx->lock);
	if (!kd)
		return -ENOENT;

	kni_dev_destroy(kd);
	return 0;
}

/*
 * KNI_IOCTL_KICK: pass over an interface this file created or attached, and
 * wake its polling thread for what is left (kni_dev_kick()). ctx->lock keeps
 * the interface alive: it leaves the file's lists before it is destroyed.
 */
static long kni_ioctl_kick(struct kni_ctx *ctx, void __user *uarg)
{
	struct kni_release rel;
	struct kni_dev *kd;
	long err;

	err = kni_copy_release(&rel, uarg);
	if (err)
		return err;

	mutex_lock(&ctx->lock);
	kd = __kni_ctx_find_mappable(ctx, rel.id);
	if (kd)
		kni_dev_kick(kd);
	mutex_unlock(&ctx->lock);
	return kd ? 0 : -ENOENT;
}

/* KNI_IOCTL_NOTIFY: the eventfd the kernel signals for a sleeping consumer. */
static long kni_ioctl_notify(struct kni_ctx *ctx, void __user *uarg)
{
	struct kni_notify nt;
	struct kni_dev *kd;
	long err;

	if (copy_from_user(&nt, uarg, sizeof(nt)))
		return -EFAULT;
	if (nt.size != sizeof(nt) || nt.reserved || nt.fd < -1)
		return -EINVAL;

	mutex_lock(&ctx->lock);
	kd = __kni_ctx_find_mappable(ctx, nt.id);
	err = kd ? kni_dev_set_notify(kd, nt.fd) : -ENOENT;
	mutex_unlock(&ctx->lock);
	return err;
}

/*
 * KNI_IOCTL_SOCKET: the interface's socket for a file that created or
 * attached it, without sysfs. ctx->lock keeps the interface alive; the
 * socket code takes kni_sock_mutex under it and never the reverse, and it
 * touches no user memory (the descriptor is the return value).
 */
static long kni_ioctl_socket(struct kni_ctx *ctx, void __user *uarg)
{
	struct kni_socket req;
	struct kni_dev *kd;
	long ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.size != sizeof(req) || (req.flags & ~KNI_SOCKET_F_CLOEXEC) ||
	    memchr_inv(req.reserved, 0, sizeof(req.reserved)))
		return -EINVAL;

	mutex_lock(&ctx->lock);
	kd = __kni_ctx_find_mappable(ctx, req.id);
	ret = kd ? kni_sock_enable(kd, req.flags & KNI_SOCKET_F_CLOEXEC) : -ENOENT;
	mutex_unlock(&ctx->lock);
	return ret;
}

static long kni_ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct kni_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case KNI_IOCTL_INFO:
		return kni_ioctl_info(uarg);
	case KNI_IOCTL_CREATE:
		return kni_ioctl_create(ctx, uarg);
	case KNI_IOCTL_RELEASE:
		return kni_ioctl_release(ctx, uarg);
	case KNI_IOCTL_ATTACH:
		return kni_ioctl_attach(ctx, uarg);
	case KNI_IOCTL_DETACH:
		return kni_ioctl_detach(ctx, uarg);
	case KNI_IOCTL_KICK:
		return kni_ioctl_kick(ctx, uarg);
	case KNI_IOCTL_NOTIFY:
		return kni_ioctl_notify(ctx, uarg);
	case KNI_IOCTL_SOCKET:
		return kni_ioctl_socket(ctx, uarg);
	}
	/* One of ours, built against a structure of another size. */
	if (_IOC_TYPE(cmd) == KNI_IOC_MAGIC && _IOC_NR(cmd) <= _IOC_NR(KNI_IOCTL_SOCKET))
		return -EINVAL;
	return -ENOTTY;
}

static void kni_vm_open(struct vm_area_struct *vma)
{
	kni_mem_get(vma->vm_private_data);
}

static void kni_vm_close(struct vm_area_struct *vma)
{
	kni_mem_put(vma->vm_private_data);
}

static const struct vm_operations_struct kni_vm_ops = {
	.open = kni_vm_open,
	.close = kni_vm_close,
};

/* Map the region of interface id at offset id << KNI_MMAP_SHIFT, shared only. */
static int kni_ctl_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kni_ctx *ctx = file->private_data;
	unsigned long pgoff = vma->vm_pgoff;
	const unsigned int id_shift = KNI_MMAP_SHIFT - PAGE_SHIFT;
	struct kni_mem *mem = NULL;
	struct kni_dev *kd;
	int err;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (pgoff & ((1UL << id_shift) - 1))
		return -EINVAL;

	mutex_lock(&ctx->lock);
	kd = __kni_ctx_find_mappable(ctx, pgoff >> id_shift);
	if (kd) {
		mem = kd->mem;
		kni_mem_get(mem);
	}
	mutex_unlock(&ctx->lock);
	if (!mem)
		return -ENXIO;

	err = kni_mem_map(mem, vma);
	if (err) {
		kni_mem_put(mem);
		return err;
	}
	vma->vm_private_data = mem;
	vma->vm_ops = &kni_vm_ops;
	return 0;
}

static int kni_ctl_open(struct inode *inode, struct file *file)
{
	struct kni_ctx *ctx;
	int err;

	err = nonseekable_open(inode, file);
	if (err)
		return err;
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	mutex_init(&ctx->lock);
	INIT_LIST_HEAD(&ctx->devs);
	INIT_LIST_HEAD(&ctx->links);
	ctx->net = get_net(current->nsproxy->net_ns);
	file->private_data = ctx;
	return 0;
}

static int kni_ctl_release(struct inode *inode, struct file *file)
{
	struct kni_ctx *ctx = file->private_data;
	struct kni_link *link, *ltmp;
	struct kni_dev *kd, *tmp;
	LIST_HEAD(links);
	LIST_HEAD(devs);

	/* Attachments first: nothing may point at ctx once it is freed. */
	mutex_lock(&kni_attach_lock);
	mutex_lock(&ctx->lock);
	list_splice_init(&ctx->links, &links);
	list_splice_init(&ctx->devs, &devs);
	list_for_each_entry(kd, &devs, ctx_node)
		kd->listed = false;
	mutex_unlock(&ctx->lock);
	list_for_each_entry(link, &links, node)
		link->kd->handler = NULL;
	mutex_unlock(&kni_attach_lock);
	list_for_each_entry_safe(link, ltmp, &links, node)
		kfree(link);

	list_for_each_entry_safe(kd, tmp, &devs, ctx_node) {
		list_del_init(&kd->ctx_node);
		kni_dev_destroy(kd);
	}
	put_net(ctx->net);
	mutex_destroy(&ctx->lock);
	kfree(ctx);
	return 0;
}

static const struct file_operations kni_ctl_fops = {
	.owner = THIS_MODULE,
	.open = kni_ctl_open,
	.release = kni_ctl_release,
	.unlocked_ioctl = kni_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = kni_ctl_mmap,
};

static struct miscdevice kni_ctl_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kni",
	.fops = &kni_ctl_fops,
	/*
	 * Like /dev/net/tun: anyone may open it, and what an opener may do is
	 * decided by capabilities in its network namespace's user namespace
	 * (kni_may_create(), kni_may_attach()).
	 */
	.mode = 0666,
};

/*
 * A network namespace is going away: the KNI interfaces moved into it go
 * with it, as a veth would, rather than being pushed back to the initial
 * namespace by the core (which it does to devices without rtnl_link_ops).
 * Each is taken off its creator's list first, so that the creator's RELEASE
 * says -ENOENT and its close skips it. Under RTNL every registered
 * interface's creator is alive: a creator is freed only after unregistering
 * all of its interfaces, which needs RTNL.
 */
static void kni_net_pre_exit(struct net *net)
{
	struct net_device *dev;
	struct kni_dev *kd, *tmp;
	LIST_HEAD(gone);

	rtnl_lock();
	for_each_netdev(net, dev) {
		kd = kni_dev_from_netdev(dev);
		if (kd && kni_ctx_take(kd->owner, kd))
			list_add_tail(&kd->ctx_node, &gone);
	}
	rtnl_unlock();
	list_for_each_entry_safe(kd, tmp, &gone, ctx_node) {
		list_del_init(&kd->ctx_node);
		kni_dev_destroy(kd);
	}
}

static struct pernet_operations kni_net_ops = {
	.pre_exit = kni_net_pre_exit,
};

int kni_ctl_register(void)
{
	int err = register_pernet_subsys(&kni_net_ops);

	if (err)
		return err;
	err = misc_register(&kni_ctl_misc);
	if (err) {
		pr_err("cannot register /dev/kni: %d\n", err);
		unregister_pernet_subsys(&kni_net_ops);
	}
	return err;
}

void kni_ctl_unregister(void)
{
	misc_deregister(&kni_ctl_misc);
	unregister_pernet_subsys(&kni_net_ops);
}
