// SPDX-License-Identifier: GPL-2.0
/*
 * Shared regions. The kernel allocates them, userspace maps them; the kernel
 * never maps user memory, so nothing userspace does to its mapping can make
 * the kernel touch memory outside the region.
 */
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "kni_internal.h"

atomic64_t kni_shm_bytes = ATOMIC64_INIT(0);

struct kni_mem *kni_mem_alloc(size_t size)
{
	struct kni_mem *mem;

	mem = kzalloc(sizeof(*mem), GFP_KERNEL);
	if (!mem)
		return NULL;
	/* Zeroed, and marked VM_USERMAP so that remap_vmalloc_range() accepts it. */
	mem->base = vmalloc_user(size);
	if (!mem->base) {
		kfree(mem);
		return NULL;
	}
	mem->size = size;
	kref_init(&mem->ref);
	atomic64_add(size, &kni_shm_bytes);
	return mem;
}

void kni_mem_get(struct kni_mem *mem)
{
	kref_get(&mem->ref);
}

static void kni_mem_release(struct kref *ref)
{
	struct kni_mem *mem = container_of(ref, struct kni_mem, ref);

	atomic64_sub(mem->size, &kni_shm_bytes);
	vfree(mem->base);
	kfree(mem);
}

void kni_mem_put(struct kni_mem *mem)
{
	kref_put(&mem->ref, kni_mem_release);
}
