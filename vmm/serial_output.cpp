#include "vmm/serial_output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"
#include "base/output_file.hpp"
#include "vmm/log.hpp"

namespace vmm {

SerialOutput::SerialOutput(const SerialConfig& config, const StopController& stop) : stop_(stop) {
    switch (config.mode) {
        case SerialConfig::Mode::Stdio:
            fd_ = STDOUT_FILENO;
            name_ = "stdout";
            break;
        case SerialConfig::Mode::File:
            file_ = base::open_output_file(config.path, O_TRUNC, "serial output file");
            fd_ = file_.get();
            name_ = config.path;
            break;
        case SerialConfig::Mode::None:
            break;
    }
}

void SerialOutput::write(std::span<const std::uint8_t> bytes) {
    if (fd_ < 0 || broken_.load(std::memory_order_relaxed)) return;
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            // The stop path kicks vCPUs with a signal; give up only then, so
            // that other interruptions do not lose output.
            if (stop_.stopping()) return;
            continue;
        }
        // A sink someone made non-blocking and that is full: drop this part,
        // as a UART whose line nobody listens to would.
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        mark_broken(n < 0 ? errno : EIO);
        return;
    }
}

void SerialOutput::mark_broken(int error_number) {
    if (broken_.exchange(true)) return;
    log::warn("serial output to {} failed ({}); dropping the guest's COM1 output from now on",
              name_, std::strerror(error_number));
}

}  // namespace vmm
