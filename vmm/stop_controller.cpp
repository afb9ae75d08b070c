#include "vmm/stop_controller.hpp"

#include "base/error.hpp"
#include "base/event_fd.hpp"

namespace vmm {

const char* to_string(StopReason reason) {
    switch (reason) {
        case StopReason::PowerOff:
            return "power off";
        case StopReason::Reboot:
            return "reboot";
        case StopReason::GuestFailure:
            return "guest failure";
        case StopReason::HostError:
            return "host error";
        case StopReason::Signal:
            return "signal";
    }
    return "unknown";
}

StopController::StopController() : event_fd_(base::make_eventfd("VM stop requests")) {}

void StopController::request(StopReason reason, std::string detail) {
    {
        std::lock_guard lock(mutex_);
        if (outcome_) return;
        outcome_ = Outcome{reason, std::move(detail)};
    }
    stopping_.store(true, std::memory_order_release);
    base::signal_eventfd(event_fd_.get());
}

std::optional<StopController::Outcome> StopController::outcome() const {
    std::lock_guard lock(mutex_);
    return outcome_;
}

}  // namespace vmm
