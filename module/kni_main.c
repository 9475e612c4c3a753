// SPDX-License-Identifier: GPL-2.0
/*
 * kni.ko: the Kernel NIC Interface of kniv.
 *
 * Module entry points and parameters. Parameters are validated here, at load
 * time, so that a bad value refuses to load instead of being silently mapped
 * to a default.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>

#include "kni_internal.h"

unsigned int kni_kthread_mode = KNI_KTHREAD_SINGLE;

static const char * const kni_kthread_mode_names[] = {
	[KNI_KTHREAD_SINGLE] = "single",
	[KNI_KTHREAD_MULTIPLE] = "multiple",
};

static int kni_kthread_mode_set(const char *val, const struct kernel_param *kp)
{
	int mode = sysfs_match_string(kni_kthread_mode_names, val);

	if (mode < 0) {
		pr_err("invalid kthread_mode '%s': expected 'single' or 'multiple'\n",
		       val);
		return -EINVAL;
	}
	*(unsigned int *)kp->arg = mode;
	return 0;
}

static int kni_kthread_mode_get(char *buf, const struct kernel_param *kp)
{
	unsigned int mode = *(unsigned int *)kp->arg;

	return scnprintf(buf, PAGE_SIZE, "%s\n", kni_kthread_mode_names[mode]);
}

static const struct kernel_param_ops kni_kthread_mode_ops = {
	.set = kni_kthread_mode_set,
	.get = kni_kthread_mode_get,
};

module_param_cb(kthread_mode, &kni_kthread_mode_ops, &kni_kthread_mode, 0444);
MODULE_PARM_DESC(kthread_mode,
		 "Kernel threads: 'single' (one for all interfaces, default) or 'multiple' (one per interface)");

unsigned int kni_poll_interval_us = 100;

/* struct kni_uint_range - bounds of an unsigned module parameter */
struct kni_uint_range {
	unsigned int min;
	unsigned int max;
};

static const struct kni_uint_range kni_poll_interval_range = { 10, 1000000 };

static int kni_uint_range_set(const char *val, const struct kernel_param *kp,
			      const struct kni_uint_range *range)
{
	unsigned int v;
	int err;

	err = kstrtouint(val, 0, &v);
	if (err || v < range->min || v > range->max) {
		pr_err("invalid %s '%s': expected %u..%u\n", kp->name, val,
		       range->min, range->max);
		return -EINVAL;
	}
	*(unsigned int *)kp->arg = v;
	return 0;
}

static int kni_poll_interval_set(const char *val, const struct kernel_param *kp)
{
	return kni_uint_range_set(val, kp, &kni_poll_interval_range);
}

static const struct kernel_param_ops kni_poll_interval_ops = {
	.set = kni_poll_interval_set,
	.get = param_get_uint,
};

module_param_cb(poll_interval_us, &kni_poll_interval_ops, &kni_poll_interval_us, 0444);
MODULE_PARM_DESC(poll_interval_us,
		 "Idle kernel threads sleep this long (to twice as long) between polls, 10..1000000 us (default 100)");

bool kni_vnet_hdr_default;
module_param_named(vnet_hdr, kni_vnet_hdr_default, bool, 0444);
MODULE_PARM_DESC(vnet_hdr,
		 "Default VNET_HDR setting of new interfaces' sockets, changed per interface in sysfs (default 0)");

static int __init kni_init(void)
{
	int err;

	err = kni_ctl_register();
	if (err)
		return err;

	pr_info("loaded, ABI %u, kthread_mode=%s, poll_interval_us=%u, vnet_hdr=%d\n",
		KNI_ABI_VERSION, kni_kthread_mode_names[kni_kthread_mode],
		kni_poll_interval_us, kni_vnet_hdr_default);
	return 0;
}

static void __exit kni_exit(void)
{
	kni_ctl_unregister();
	kni_net_exit();
	pr_info("unloaded\n");
}

module_init(kni_init);
module_exit(kni_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kniv developers");
MODULE_DESCRIPTION("Kernel NIC Interface with a vhost-net raw-socket backend");
