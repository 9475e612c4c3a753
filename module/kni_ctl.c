// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kni: the control device. Every ioctl argument is copied in whole,
 * checked for its size and reserved fields, and only then acted upon.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "kni_internal.h"

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
	if (info.size != sizeof(info) ||
	    !kni_all_zero(info.reserved, ARRAY_SIZE(info.reserved)))
		return -EINVAL;

	info.abi_version = KNI_ABI_VERSION;
	info.kthread_mode = kni_kthread_mode;

	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long kni_ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case KNI_IOCTL_INFO:
		return kni_ioctl_info(uarg);
	default:
		return -ENOTTY;
	}
}

static int kni_ctl_open(struct inode *inode, struct file *file)
{
	return nonseekable_open(inode, file);
}

static const struct file_operations kni_ctl_fops = {
	.owner = THIS_MODULE,
	.open = kni_ctl_open,
	.unlocked_ioctl = kni_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice kni_ctl_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kni",
	.fops = &kni_ctl_fops,
	.mode = 0600,
};

int kni_ctl_register(void)
{
	int err = misc_register(&kni_ctl_misc);

	if (err)
		pr_err("cannot register /dev/kni: %d\n", err);
	return err;
}

void kni_ctl_unregister(void)
{
	misc_deregister(&kni_ctl_misc);
}
