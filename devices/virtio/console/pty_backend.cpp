#include "devices/virtio/console/pty_backend.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <termios.h>

#include <array>

#include "base/error.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

PtyBackend::PtyBackend() : master_(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)) {
    if (!master_) base::throw_errno("virtio-console pty: posix_openpt");
    if (::grantpt(master_.get()) != 0) base::throw_errno("virtio-console pty: grantpt");
    if (::unlockpt(master_.get()) != 0) base::throw_errno("virtio-console pty: unlockpt");
    std::array<char, 128> name{};
    if (::ptsname_r(master_.get(), name.data(), name.size()) != 0) {
        base::throw_errno("virtio-console pty: ptsname");
    }
    path_ = name.data();
    terminal_ = base::UniqueFd(::open(path_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
    if (!terminal_) base::throw_errno("virtio-console pty {}", path_);
    // Raw: no echo back into the guest, no newline or signal translation.
    termios mode{};
    if (::tcgetattr(terminal_.get(), &mode) != 0) base::throw_errno("virtio-console pty {}", path_);
    ::cfmakeraw(&mode);
    if (::tcsetattr(terminal_.get(), TCSANOW, &mode) != 0) {
        base::throw_errno("virtio-console pty {}", path_);
    }
    vmm::log::info("virtio-console: pty {}", path_);
}

void PtyBackend::attach(VirtioContext& context, Events& events) {
    context_ = &context;
    want_input_ = false;
    context.watch_fd(master_.get(), 0, [&events](std::uint32_t) { events.input_ready(); });
}

void PtyBackend::detach() {
    context_ = nullptr;
    want_input_ = false;
}

std::size_t PtyBackend::read(std::span<const iovec> buffers) {
    if (buffers.empty()) return 0;
    for (;;) {
        const ssize_t got =
            ::readv(master_.get(), buffers.data(), static_cast<int>(buffers.size()));
        if (got > 0) return static_cast<std::size_t>(got);
        if (got < 0 && errno == EINTR) continue;
        return 0;  // EAGAIN: nothing typed; EIO cannot happen while we hold the terminal
    }
}

ConsoleBackend::WriteResult PtyBackend::write(std::span<const iovec> buffers) {
    std::size_t total = 0;
    for (const auto& buffer : buffers) total += buffer.iov_len;
    if (total == 0) return {WriteStatus::Written, 0};
    for (;;) {
        const ssize_t written =
            ::writev(master_.get(), buffers.data(), static_cast<int>(buffers.size()));
        if (written > 0) return {WriteStatus::Written, static_cast<std::size_t>(written)};
        if (written < 0 && errno == EINTR) continue;
        return {WriteStatus::Dropped, total};  // EAGAIN: nobody is reading
    }
}

void PtyBackend::want_input(bool wanted) {
    if (wanted == want_input_ || context_ == nullptr) return;
    want_input_ = wanted;
    context_->set_fd_events(master_.get(), wanted ? std::uint32_t{EPOLLIN} : 0u);
}

}  // namespace devices::virtio
