// Must NOT compile: the system's <linux/vfio.h> (Debian 12: Linux 6.1, guard
// VFIO_H, no VFIO cdev) seen first would make the vendored vfio.h section
// vanish behind its guard. The vendored header's #error has to say so.
#include <linux/vfio.h>

#include "iommufd_backend/uapi/iommufd_uapi.h"
