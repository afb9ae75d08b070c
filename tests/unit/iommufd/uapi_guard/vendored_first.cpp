// Must compile, with the vendored 6.12.y definitions in force even when the
// system's <linux/vfio.h> is included afterwards (it is then skipped whole).
#include "iommufd_backend/uapi/iommufd_uapi.h"
// clang-format off: the system header must come second here.
#include <linux/vfio.h>
// clang-format on

// Neither exists in Debian 12's 6.1 vfio.h: the vendored section is what defined them.
static_assert(sizeof(vfio_device_bind_iommufd) == 16);
static_assert(VFIO_DEVICE_BIND_IOMMUFD != 0);
