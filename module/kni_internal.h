/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KNI_INTERNAL_H
#define KNI_INTERNAL_H

#include "kni_uapi.h"

/* Set once by the kthread_mode parameter at load time, read-only after. */
extern unsigned int kni_kthread_mode;

int kni_ctl_register(void);
void kni_ctl_unregister(void);

#endif /* KNI_INTERNAL_H */
