// Parsing of the device flags' KEY=VALUE lists (--disk), shared by the
// command line and the TOML config (where they are arrays of strings).
#pragma once

#include <string>

#include "vmm/machine_config.hpp"

namespace vmm::cli {

// "path=FILE[,readonly=on|off][,serial=ID][,queues=N]". Throws base::Error
// naming the flag and the offending part.
DiskConfig parse_disk(const std::string& text);

// "tap=NAME[,mac=XX:XX:XX:XX:XX:XX]": a tap interface name the kernel would
// accept and a unicast MAC. Throws base::Error naming the flag and the part.
NetConfig parse_net(const std::string& text);

// "socket=PATH", "file=PATH" or "pty": the host end of the virtio-console.
// Only the syntax is checked here; the path itself when the device opens it.
ConsoleConfig parse_console(const std::string& text);

// "vfio=ADDRESS" (a host PCI address, DDDD:BB:DD.F or BB:DD.F) or
// "vfio=/dev/vfio/devices/vfioN" (a VFIO cdev path): a device to pass
// through. Only the syntax is checked here; the device when the VM is built.
PassthroughConfig parse_device(const std::string& text);

// "cid=N" with N from 3 to 4294967294 (0-2 and 2^32 - 1 are reserved).
// Whether the CID is free on this host is known only when the device claims it.
VsockConfig parse_vsock(const std::string& text);

}  // namespace vmm::cli
