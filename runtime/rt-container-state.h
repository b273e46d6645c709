/* Private: the state directory of a container, STATE_ROOT/ID/ (0700):
 *   state.json  {id, pid, starttime, bundle, created, cgroup}
 *   exec.fifo   present while the init waits for "start" */
#ifndef BERTH_RT_CONTAINER_STATE_H
#define BERTH_RT_CONTAINER_STATE_H

#include "runtime/rt-container-internal.h"

#define RT_EXEC_FIFO  "exec.fifo"
#define RT_STATE_FILE "state.json"

int rt_state_write(const char *dir, const char *id, pid_t pid, const char *bundle,
                   const struct rt_cgroup *cg, struct bh_err *err);

#endif
