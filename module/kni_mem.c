// SPDX-License-Identifier: GPL-2.0
/*
 * Shared regions. The kernel allocates them, userspace maps them; the kernel
 * never maps user memory, so nothing userspace does to its mapping can make
 * the kernel touch memory outside the region. A region's pages are charged
 * to the memory cgroup of the process that created the interface, as the
 * pages of a tun device's queue are to its sender's.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "kni_compat.h"
#include "kni_internal.h"

atomic64_t kni_shm_bytes = ATOMIC64_INIT(0);

struct kni_mem *kni_mem_alloc(size_t size)
{
	struct kni_mem *mem;

	mem = kzalloc(sizeof(*mem), GFP_KERNEL_ACCOUNT);
	if (!mem)
		return NULL;
	/* Zeroed and charged; mapped page by page (kni_mem_map()). */
	/* Over the cgroup's limit, CREATE fails with ENOMEM: no OOM kill, no warning. */
	mem->base = __vmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_ZERO |
			      __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
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

/*
 * Map mem into vma (the mmap handler's, mmap_lock held), from its start:
 * shared, never executable, never grown by mremap(). -EINVAL if the VMA is
 * larger than the region, -EPERM if it asks for PROT_EXEC.
 */
int kni_mem_map(struct kni_mem *mem, struct vm_area_struct *vma)
{
	unsigned long n = vma_pages(vma), i;
	int err;

	if (n > mem->size >> PAGE_SHIFT)
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	kni_vm_flags_clear(vma, VM_MAYEXEC);
	kni_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	for (i = 0; i < n; i++) {
		struct page *page = vmalloc_to_page(mem->base + (i << PAGE_SHIFT));

		err = vm_insert_page(vma, vma->vm_start + (i << PAGE_SHIFT), page);
		if (err)
			return err;
	}
	return 0;
}
