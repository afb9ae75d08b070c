#include "vmm/terminal_guard.hpp"

#include <unistd.h>

namespace vmm {

TerminalGuard::TerminalGuard(int fd) : fd_(fd) {
    termios current{};
    if (!::isatty(fd) || ::tcgetattr(fd, &current) != 0) return;
    saved_ = current;
    termios raw = current;
    // Keystrokes (including Ctrl-C) go to the guest unprocessed; output
    // post-processing stays on so host log lines still start at column 0.
    raw.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
                                          ICRNL | IXON);
    raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    ::tcsetattr(fd, TCSANOW, &raw);
}

TerminalGuard::~TerminalGuard() {
    if (saved_) ::tcsetattr(fd_, TCSANOW, &*saved_);
}

}  // namespace vmm
