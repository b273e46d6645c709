/* berth-monitor: the per-container monitor that berthd spawns (see
 * runtime/rt-monitor.h for its command line, files and attach protocol).
 * It is not sealed itself: it never runs in or next to the container; the
 * child that starts the container is (runtime/monitor-starter.c). */
#include "runtime/rt-monitor.h"

int main(int argc, char **argv)
{
	return rt_monitor_main(argc, argv);
}
