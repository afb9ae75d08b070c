// Where COM1's bytes go: the terminal, a file, or nowhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include "base/unique_fd.hpp"
#include "vmm/machine_config.hpp"
#include "vmm/stop_controller.hpp"

namespace vmm {

class SerialOutput {
  public:
    // Opens file:PATH at once, so that a bad path fails before the VM is
    // built; a FIFO must already have a reader (base::Error otherwise, rather
    // than blocking in open() for one). `stop` outlives this object.
    SerialOutput(const SerialConfig& config, const StopController& stop);
    SerialOutput(const SerialOutput&) = delete;
    SerialOutput& operator=(const SerialOutput&) = delete;

    // Thread-safe (vCPU threads). Blocks while the sink is full, so a slow
    // reader loses nothing, until the VM is stopping: then a kick (EINTR)
    // drops the rest, or a sink nobody drains would keep the vCPU from ever
    // stopping. A sink that fails (EPIPE from a reader that went away, EIO,
    // ENOSPC) is logged once and dropped from then on; the guest runs on.
    void write(std::span<const std::uint8_t> bytes);

  private:
    void mark_broken(int error_number);

    const StopController& stop_;
    base::UniqueFd file_;  // owned only for file:PATH
    int fd_ = -1;
    std::string name_;  // for the log line
    std::atomic<bool> broken_{false};
};

}  // namespace vmm
