// A rate limit for the warnings a guest can trigger at will (a driver that
// fails its device on every reset, a disk whose host I/O keeps failing): the
// first kFirst occurrences are logged in full, then one line each time the
// count reaches a power of two, so a guest repeating itself for hours costs
// a few dozen lines and the log still says how often it happened. The rest
// go to the debug level. Thread-safe: one counter, relaxed.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <string>

#include "vmm/log.hpp"

namespace devices {

class LogLimit {
  public:
    static constexpr std::uint64_t kFirst = 5;

    template <typename... Args>
    void warn(fmt::format_string<Args...> format, Args&&... args) {
        const std::uint64_t count = count_.fetch_add(1, std::memory_order_relaxed) + 1;
        const bool full = count <= kFirst;
        const bool summary = !full && std::has_single_bit(count);
        const auto level = full || summary ? vmm::log::Level::Warn : vmm::log::Level::Debug;
        if (!vmm::log::enabled(level)) return;
        std::string line = fmt::format(format, std::forward<Args>(args)...);
        if (count == kFirst) {
            line += " (further ones are logged at every power of two)";
        } else if (summary) {
            line += fmt::format(" ({} times so far)", count);
        }
        vmm::log::write_line(level, line);
    }

    std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> count_{0};
};

}  // namespace devices
