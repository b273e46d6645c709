/* berthd: the berth daemon.  Everything lives in berthd_core (srv_main). */
#include "server/server-internal.h"

int main(int argc, char **argv)
{
	return srv_main(argc, argv);
}
