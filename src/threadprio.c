/* Lowering one thread's priority: on Linux a nice value is per thread, set through its tid. */
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "threadprio.h"

void mf_thread_set_background(void)
{
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0) {
		/* best effort: a writer at normal priority is still correct */
	}
}
