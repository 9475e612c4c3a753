// SPDX-License-Identifier: GPL-2.0
/*
 * Per-interface sysfs attributes, /sys/class/net/<name>/: the KNI socket
 * (sock_en, sock_fd) and its VNET_HDR setting (vnet_hdr). kni_uapi.h and
 * docs/abi.md give the contract. The group is installed in slot 0 of the
 * netdev's sysfs_groups before register_netdev(), so the attributes appear
 * and disappear with the device, and unregister waits for writers in them.
 */
#include <linux/capability.h>
#include <linux/device.h>
#include <linux/netdevice.h>
#include <linux/sysfs.h>
#include <net/net_namespace.h>

#include "kni_internal.h"

static struct kni_dev *kni_from_device(struct device *d)
{
	return netdev_priv(to_net_dev(d));
}

/* Like the netdev attributes of net-sysfs: admin of the device's namespace. */
static int kni_sysfs_bool(struct device *d, const char *buf, bool *val)
{
	if (!ns_capable(dev_net(to_net_dev(d))->user_ns, CAP_NET_ADMIN))
		return -EPERM;
	return kstrtobool(buf, val);
}

static ssize_t sock_en_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%d\n", kni_sock_fd(kni_from_device(d)) >= 0);
}

static ssize_t sock_en_store(struct device *d, struct device_attribute *attr,
			     const char *buf, size_t len)
{
	struct kni_dev *kd = kni_from_device(d);
	bool on;
	int err;

	err = kni_sysfs_bool(d, buf, &on);
	if (!err)
		err = on ? kni_sock_enable(kd, false) : kni_sock_disable(kd);
	return err < 0 ? err : len;
}
static DEVICE_ATTR_RW(sock_en);

static ssize_t sock_fd_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%d\n", kni_sock_fd(kni_from_device(d)));
}
static DEVICE_ATTR_RO(sock_fd);

static ssize_t vnet_hdr_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%d\n", kni_sock_get_vnet_hdr(kni_from_device(d)));
}

static ssize_t vnet_hdr_store(struct device *d, struct device_attribute *attr,
			      const char *buf, size_t len)
{
	bool on;
	int err;

	err = kni_sysfs_bool(d, buf, &on);
	if (!err)
		err = kni_sock_set_vnet_hdr(kni_from_device(d), on);
	return err < 0 ? err : len;
}
static DEVICE_ATTR_RW(vnet_hdr);

static struct attribute *kni_sysfs_attrs[] = {
	&dev_attr_sock_en.attr,
	&dev_attr_sock_fd.attr,
	&dev_attr_vnet_hdr.attr,
	NULL,
};

const struct attribute_group kni_sysfs_group = {
	.attrs = kni_sysfs_attrs,
};
