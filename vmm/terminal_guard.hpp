// Puts an interactive terminal into raw input mode for the guest's console
// and restores the saved settings when destroyed, on every exit path.
#pragma once

#include <termios.h>

#include <optional>

namespace vmm {

class TerminalGuard {
public:
    // Does nothing when `fd` is not a terminal.
    explicit TerminalGuard(int fd);
    ~TerminalGuard();
    TerminalGuard(const TerminalGuard&) = delete;
    TerminalGuard& operator=(const TerminalGuard&) = delete;

    bool active() const { return saved_.has_value(); }

private:
    int fd_;
    std::optional<termios> saved_;
};

}  // namespace vmm
