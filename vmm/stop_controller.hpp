// Collects the first stop request from any thread and wakes the main loop
// through an eventfd. Later requests are ignored: the first reason wins.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include "base/unique_fd.hpp"
#include "vmm/vm_stop.hpp"

namespace vmm {

class StopController {
public:
    StopController();

    void request(StopReason reason, std::string detail);
    bool stopping() const { return stopping_.load(std::memory_order_acquire); }
    // Readable once a stop was requested.
    int event_fd() const { return event_fd_.get(); }

    struct Outcome {
        StopReason reason;
        std::string detail;
    };
    std::optional<Outcome> outcome() const;

    StopRequest callback() {
        return [this](StopReason reason, std::string detail) { request(reason, std::move(detail)); };
    }

private:
    base::UniqueFd event_fd_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::optional<Outcome> outcome_;
};

}  // namespace vmm
