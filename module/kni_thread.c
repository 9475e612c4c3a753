// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel threads that poll the interfaces: one for all of them
 * (kthread_mode=single) or one per interface (kthread_mode=multiple).
 * A thread sleeps poll_interval_us..2*poll_interval_us between passes that
 * found nothing to do, and never longer, so that responses to control
 * requests are seen within a bounded time.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/sched.h>

#include "kni_internal.h"

/* Busy passes in a row before a thread sleeps anyway. */
#define KNI_BUSY_PASSES		64

atomic_t kni_live_threads = ATOMIC_INIT(0);

/*
 * kthread_mode=single. kni_single_ctl_lock serialises attach and detach, so
 * the thread is started and stopped by one caller at a time; kni_single_lock
 * protects the list the thread walks, and is what detach takes to be sure the
 * thread no longer looks at an interface.
 */
static DEFINE_MUTEX(kni_single_ctl_lock);	/* kni_single_thread, start/stop */
static DEFINE_MUTEX(kni_single_lock);		/* kni_single_list */
static LIST_HEAD(kni_single_list);
static struct task_struct *kni_single_thread;

static void kni_thread_pause(bool busy, unsigned int *busy_passes)
{
	if (busy && ++*busy_passes < KNI_BUSY_PASSES) {
		cond_resched();
		return;
	}
	*busy_passes = 0;
	usleep_range(kni_poll_interval_us, 2 * kni_poll_interval_us);
}

static int kni_thread_single_fn(void *unused)
{
	unsigned int busy_passes = 0;

	while (!kthread_should_stop()) {
		struct kni_dev *kd;
		bool busy = false;

		mutex_lock(&kni_single_lock);
		list_for_each_entry(kd, &kni_single_list, thread_node)
			busy |= kni_dev_poll(kd);
		mutex_unlock(&kni_single_lock);
		kni_thread_pause(busy, &busy_passes);
	}
	return 0;
}

static int kni_thread_dev_fn(void *arg)
{
	struct kni_dev *kd = arg;
	unsigned int busy_passes = 0;

	while (!kthread_should_stop())
		kni_thread_pause(kni_dev_poll(kd), &busy_passes);
	return 0;
}

static struct task_struct *kni_thread_start(int (*fn)(void *), void *arg,
					    const char *name, struct kni_dev *kd)
{
	struct task_struct *t;

	t = kthread_create(fn, arg, "kni_%s", name);
	if (IS_ERR(t))
		return t;
	if (kd->bind)
		kthread_bind(t, kd->cpu);
	atomic_inc(&kni_live_threads);
	wake_up_process(t);
	return t;
}

static void kni_thread_stop(struct task_struct *t)
{
	kthread_stop(t);
	atomic_dec(&kni_live_threads);
}

/*
 * Start polling kd. In single mode the shared thread is created by the first
 * interface, bound to that interface's CPU if it asked for it.
 */
int kni_thread_attach(struct kni_dev *kd)
{
	struct task_struct *t;

	if (kni_kthread_mode == KNI_KTHREAD_MULTIPLE) {
		t = kni_thread_start(kni_thread_dev_fn, kd, kd->netdev->name, kd);
		if (IS_ERR(t))
			return PTR_ERR(t);
		kd->thread = t;
		return 0;
	}

	mutex_lock(&kni_single_ctl_lock);
	if (!kni_single_thread) {
		t = kni_thread_start(kni_thread_single_fn, NULL, "single", kd);
		if (IS_ERR(t)) {
			mutex_unlock(&kni_single_ctl_lock);
			return PTR_ERR(t);
		}
		kni_single_thread = t;
	}
	mutex_lock(&kni_single_lock);
	list_add_tail(&kd->thread_node, &kni_single_list);
	mutex_unlock(&kni_single_lock);
	mutex_unlock(&kni_single_ctl_lock);
	return 0;
}

/* Stop polling kd; on return no thread looks at it any more. */
void kni_thread_detach(struct kni_dev *kd)
{
	struct task_struct *t = NULL;

	if (kni_kthread_mode == KNI_KTHREAD_MULTIPLE) {
		kni_thread_stop(kd->thread);
		kd->thread = NULL;
		return;
	}

	mutex_lock(&kni_single_ctl_lock);
	mutex_lock(&kni_single_lock);
	list_del(&kd->thread_node);
	if (list_empty(&kni_single_list)) {
		t = kni_single_thread;
		kni_single_thread = NULL;
	}
	mutex_unlock(&kni_single_lock);
	/* Outside kni_single_lock: the thread takes it on every pass. */
	if (t)
		kni_thread_stop(t);
	mutex_unlock(&kni_single_ctl_lock);
}
