/* berth-monitor: the per-container monitor that berthd spawns (see
 * runtime/rt-monitor.h for its command line, files and attach protocol). */
#include "runtime/rt-monitor.h"

int main(int argc, char **argv)
{
	return rt_monitor_main(argc, argv);
}
