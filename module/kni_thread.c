// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel threads that poll the interfaces: one for all of them
 * (kthread_mode=single) or one per interface (kthread_mode=multiple).
 * Between passes that found nothing to do a thread waits poll_interval_us.
 * A thread whose interfaces all have doorbells (KNI_CREATE_F_DOORBELL, struct
 * kni_doorbell in kni_uapi.h) announces every such wait in kernel_sleeping,
 * so a producer kicks it at once instead of a frame waiting out the timer;
 * after KNI_IDLE_PASSES idle passes in a row it sleeps until kicked, so an
 * idle interface costs no CPU. Any other thread keeps polling on the timer,
 * so that frames on an interface without doorbells are seen within a
 * bounded time.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/sched.h>

#include "kni_internal.h"

/* Busy passes in a row before a thread sleeps anyway. */
#define KNI_BUSY_PASSES		64
/* Idle passes in a row (each poll_interval_us or more) before it may sleep for good. */
#define KNI_IDLE_PASSES		32

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
static struct kni_waker kni_single_waker = {
	.wq = __WAIT_QUEUE_HEAD_INITIALIZER(kni_single_waker.wq),
};

void kni_waker_init(struct kni_waker *w)
{
	init_waitqueue_head(&w->wq);
	w->kicked = false;
}

void kni_waker_kick(struct kni_waker *w)
{
	WRITE_ONCE(w->kicked, true);
	wake_up_interruptible(&w->wq);
}

/* Ring kd's kernel doorbell: KNI_IOCTL_KICK. */
void kni_thread_kick(struct kni_dev *kd)
{
	kni_waker_kick(kd->waker);
}

/* What a polling thread knows between passes. */
struct kni_pace {
	unsigned int busy_passes;
	unsigned int idle_passes;
};

/* What a thread does after a pass. */
enum kni_pause {
	KNI_PASS,	/* pass again */
	KNI_NAP,	/* wait poll_interval_us, or until kicked */
	KNI_SLEEP,	/* wait until kicked */
};

static enum kni_pause kni_thread_pause(struct kni_pace *p, bool busy)
{
	if (busy) {
		p->idle_passes = 0;
		if (++p->busy_passes < KNI_BUSY_PASSES) {
			cond_resched();
			return KNI_PASS;
		}
		/* Busy for long: let others run, however much is queued. */
		p->busy_passes = 0;
		usleep_range(kni_poll_interval_us, 2 * kni_poll_interval_us);
		return KNI_PASS;
	}
	p->busy_passes = 0;
	if (++p->idle_passes >= KNI_IDLE_PASSES) {
		p->idle_passes = 0;
		return KNI_SLEEP;
	}
	return KNI_NAP;
}

static void kni_doorbell_set(struct kni_dev *kd, u32 sleeping)
{
	WRITE_ONCE(kd->doorbell->kernel_sleeping, sleeping);
}

/*
 * Announce the sleep on every interface of @list (linked by thread_node) and
 * take a last look at their FIFOs. True if the thread may sleep: every one
 * has doorbells and none has work (work that waits for a socket reader
 * keeps the thread napping on the timer). Called with the list stable. The waker's
 * kicked flag is cleared first, so a kick from now on ends the sleep.
 */
static bool kni_sleep_prepare(struct kni_waker *w, struct list_head *list)
{
	struct kni_dev *kd;
	bool ok = true;

	WRITE_ONCE(w->kicked, false);
	list_for_each_entry(kd, list, thread_node) {
		if (!kd->doorbells)
			return false;
		kni_doorbell_set(kd, 1);
	}
	/* Pairs with the producer's fence between publishing and reading kernel_sleeping. */
	smp_mb();
	list_for_each_entry(kd, list, thread_node)
		ok = ok && !kni_dev_pending(kd);
	return ok;
}

static void kni_sleep_end(struct list_head *list)
{
	struct kni_dev *kd;

	list_for_each_entry(kd, list, thread_node)
		if (kd->doorbells)
			kni_doorbell_set(kd, 0);
}

/*
 * Wait until kicked (or stopped; kthread_stop() wakes the task itself), for
 * at most poll_interval_us when napping. A thread that could not announce
 * its wait (an interface without doorbells) only naps, on the timer.
 */
static void kni_wait(struct kni_waker *w, enum kni_pause how, bool announced)
{
	ktime_t nap = ns_to_ktime((u64)kni_poll_interval_us * NSEC_PER_USEC);

	if (!announced) {
		usleep_range(kni_poll_interval_us, 2 * kni_poll_interval_us);
		return;
	}
	if (how == KNI_SLEEP)
		wait_event_interruptible(w->wq, READ_ONCE(w->kicked) || kthread_should_stop());
	else
		wait_event_interruptible_hrtimeout(w->wq,
						   READ_ONCE(w->kicked) || kthread_should_stop(),
						   nap);
}

static int kni_thread_single_fn(void *unused)
{
	struct kni_pace pace = {};

	while (!kthread_should_stop()) {
		enum kni_pause how;
		struct kni_dev *kd;
		bool busy = false, sleep;

		mutex_lock(&kni_single_lock);
		list_for_each_entry(kd, &kni_single_list, thread_node)
			busy |= kni_dev_poll(kd);
		mutex_unlock(&kni_single_lock);
		how = kni_thread_pause(&pace, busy);
		if (how == KNI_PASS)
			continue;

		mutex_lock(&kni_single_lock);
		sleep = kni_sleep_prepare(&kni_single_waker, &kni_single_list);
		mutex_unlock(&kni_single_lock);
		/* An interface added meanwhile kicks: attach rings the doorbell. */
		kni_wait(&kni_single_waker, how, sleep);
		mutex_lock(&kni_single_lock);
		kni_sleep_end(&kni_single_list);
		mutex_unlock(&kni_single_lock);
	}
	return 0;
}

static int kni_thread_dev_fn(void *arg)
{
	struct kni_dev *kd = arg;
	struct kni_pace pace = {};
	LIST_HEAD(one);

	/* A list of one, for kni_sleep_prepare(); thread_node is unused in this mode. */
	list_add(&kd->thread_node, &one);
	while (!kthread_should_stop()) {
		enum kni_pause how = kni_thread_pause(&pace, kni_dev_poll(kd));

		if (how == KNI_PASS)
			continue;
		kni_wait(kd->waker, how, kni_sleep_prepare(kd->waker, &one));
		kni_sleep_end(&one);
	}
	list_del_init(&kd->thread_node);
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
		kni_waker_init(&kd->own_waker);
		kd->waker = &kd->own_waker;
		t = kni_thread_start(kni_thread_dev_fn, kd, kd->netdev->name, kd);
		if (IS_ERR(t))
			return PTR_ERR(t);
		kd->thread = t;
		return 0;
	}

	kd->waker = &kni_single_waker;
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
	/* The thread may be asleep on the others' doorbells: it must see this one. */
	kni_waker_kick(&kni_single_waker);
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
