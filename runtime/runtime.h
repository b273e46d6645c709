/* runtime: containers and images on the Linux kernel — namespaces, cgroups,
 * seccomp, mounts, the image store, layer unpacking.  Knows nothing of HTTP,
 * WebSockets or client certificates.  Trusts neither container roots nor
 * image content: paths inside a root are resolved relative to a directory fd.
 *
 * This umbrella is the module's one public header; each area keeps its
 * declarations in a runtime/rt-<area>.h that is included here. */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include "runtime/rt-host.h"
#include "runtime/rt-image.h"
#include "runtime/rt-container.h"
#include "runtime/rt-monitor.h"
#include "runtime/rt-registry.h"

#endif
