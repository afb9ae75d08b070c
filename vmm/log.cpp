#include "vmm/log.hpp"

#include <unistd.h>

#include <array>
#include <string>

namespace vmm::log {

namespace {
constexpr std::array<std::string_view, 5> kNames = {"trace", "debug", "info", "warn", "error"};
}

std::optional<Level> parse_level(std::string_view name) {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (name == kNames[i]) return static_cast<Level>(i);
    }
    if (name == "off") return Level::Off;
    return std::nullopt;
}

void write_line(Level level, std::string_view message) {
    if (level >= Level::Off) return;  // "off" is a threshold, not a level to log at
    // One write(2) per line so lines from different threads never interleave.
    // The raw terminal mode keeps OPOST, so "\n" still returns the carriage.
    std::string line = fmt::format("vmm: {}: {}\n", kNames[static_cast<int>(level)], message);
    std::size_t written = 0;
    while (written < line.size()) {
        const ssize_t n = ::write(STDERR_FILENO, line.data() + written, line.size() - written);
        if (n <= 0) break;
        written += static_cast<std::size_t>(n);
    }
}

}  // namespace vmm::log
