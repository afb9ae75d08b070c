// <linux/vhost.h> for C++. It includes <linux/virtio_ring.h>, whose legacy
// vring_init() converts void* implicitly, which C++ rejects; nothing here
// needs the legacy ring helpers, so they are left out.
#pragma once

#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY
#endif
#include <linux/vhost.h>  // IWYU pragma: export
