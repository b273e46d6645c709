/* Linked into berth-monitor-hooks only: that test build runs host commands
 * (--exec-host-cmd) and must never start a real container.  Weak, so the
 * stubs never clash with the runtime library (whose members are then simply
 * not pulled in). */
#include <errno.h>

#include "runtime/rt-container.h"

__attribute__((weak)) int rt_container_start(const struct rt_container_opts *o, pid_t *pid,
                                             struct bh_err *err)
{
	return bh_err_set(err, ENOSYS, "berth-monitor-hooks: only --exec-host-cmd is supported");
}

__attribute__((weak)) int rt_container_oom_killed(const char *state_root, const char *id, bool *oom,
                                                  struct bh_err *err)
{
	*oom = false;
	return 0;
}

__attribute__((weak)) int rt_container_start_console(const struct rt_container_opts *o,
                                                     const struct rt_console_opts *c, pid_t *pid,
                                                     struct bh_err *err)
{
	return bh_err_set(err, ENOSYS, "berth-monitor-hooks: only --exec-host-cmd is supported");
}

__attribute__((weak)) int rt_container_exec(const struct rt_exec_opts *o, pid_t *pid,
                                            struct bh_err *err)
{
	return bh_err_set(err, ENOSYS, "berth-monitor-hooks: only --exec-host-cmd is supported");
}

__attribute__((weak)) int rt_exec_spec_load(const char *path, struct rt_exec_spec *s,
                                            struct bh_err *err)
{
	return bh_err_set(err, ENOSYS, "berth-monitor-hooks: only --exec-host-cmd is supported");
}

__attribute__((weak)) void rt_exec_spec_free(struct rt_exec_spec *s)
{
}
