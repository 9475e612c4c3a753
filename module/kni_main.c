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

static int __init kni_init(void)
{
	int err;

	err = kni_ctl_register();
	if (err)
		return err;

	pr_info("loaded, ABI %u, kthread_mode=%s\n", KNI_ABI_VERSION,
		kni_kthread_mode_names[kni_kthread_mode]);
	return 0;
}

static void __exit kni_exit(void)
{
	kni_ctl_unregister();
	pr_info("unloaded\n");
}

module_init(kni_init);
module_exit(kni_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kniv developers");
MODULE_DESCRIPTION("Kernel NIC Interface with a vhost-net raw-socket backend");
