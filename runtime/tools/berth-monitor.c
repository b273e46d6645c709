/* berth-monitor: the per-container monitor that berthd spawns (see
 * runtime/rt-monitor.h for its command line, files and attach protocol). */
#include <stdio.h>

#include "runtime/rt-container.h"
#include "runtime/rt-monitor.h"

int main(int argc, char **argv)
{
#ifndef RT_MONITOR_TEST_HOOKS
	struct bh_err err;

	/* CVE-2019-5736: the container must never be able to reach this binary
	 * through /proc/self/exe; run from a sealed copy. */
	if (rt_selfexe_ensure_sealed(argv, &err) < 0) {
		fprintf(stderr, "berth-monitor: %s\n", err.msg);
		return 1;
	}
#endif
	return rt_monitor_main(argc, argv);
}
