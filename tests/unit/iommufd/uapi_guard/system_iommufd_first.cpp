// Must NOT compile. Debian 12 ships no <linux/iommufd.h>; a newer
// linux-libc-dev does, and its first line after the license is this guard.
#define _IOMMUFD_H

#include "iommufd_backend/uapi/iommufd_uapi.h"
