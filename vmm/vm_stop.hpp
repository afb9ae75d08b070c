// Why a VM stops, and the callback devices use to ask for it. The Machine
// decides the process exit code from the reason.
#pragma once

#include <functional>
#include <string>

namespace vmm {

enum class StopReason {
    PowerOff,      // the guest powered off (ACPI S5)
    Reboot,        // the guest asked for a reset (i8042 or ACPI reset register)
    GuestFailure,  // triple fault, KVM internal error, failed VM entry
    HostError,     // the VMM itself failed
    Signal,        // SIGINT/SIGTERM
};

const char* to_string(StopReason reason);

// Thread-safe: may be called from any vCPU or device thread.
using StopRequest = std::function<void(StopReason reason, std::string detail)>;

}  // namespace vmm
