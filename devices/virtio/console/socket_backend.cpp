#include "devices/virtio/console/socket_backend.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>

#include "base/error.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

namespace {

std::uint64_t total_bytes(std::span<const iovec> buffers) {
    std::uint64_t total = 0;
    for (const auto& buffer : buffers) total += buffer.iov_len;
    return total;
}

}  // namespace

SocketBackend::SocketBackend(std::string path) : path_(std::move(path)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof(address.sun_path)) {
        throw base::Error("virtio-console socket '{}': a unix socket path has 1 to {} bytes", path_,
                          sizeof(address.sun_path) - 1);
    }
    std::filesystem::path directory = std::filesystem::path(path_).parent_path();
    if (directory.empty()) directory = ".";
    std::error_code error;
    if (!std::filesystem::is_directory(directory, error)) {
        throw base::Error("virtio-console socket {}: directory {} does not exist", path_,
                          directory.string());
    }
    struct stat existing {};
    if (::lstat(path_.c_str(), &existing) == 0) {
        throw base::Error(
            "virtio-console socket {}: the path exists already (a socket left by an earlier "
            "vmm? remove it)",
            path_);
    }
    std::memcpy(address.sun_path, path_.data(), path_.size());

    listen_ = base::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_) base::throw_errno("virtio-console socket {}: socket", path_);
    // Safety: sockaddr_un is a sockaddr for AF_UNIX; the size passed is its own.
    if (::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        base::throw_errno("virtio-console socket {}: bind", path_);
    }
    struct stat bound {};
    if (::stat(path_.c_str(), &bound) == 0) {
        device_ = bound.st_dev;
        inode_ = bound.st_ino;
    }
    // Backlog 1: one client waits while another is connected.
    if (::listen(listen_.get(), 1) != 0) {
        const int saved = errno;
        ::unlink(path_.c_str());
        throw base::SystemError(saved, fmt::format("virtio-console socket {}: listen", path_));
    }
    vmm::log::info("virtio-console: listening on {}", path_);
}

SocketBackend::~SocketBackend() {
    // Only our own socket: PATH may have been replaced since.
    struct stat now {};
    if (::lstat(path_.c_str(), &now) == 0 && now.st_dev == device_ && now.st_ino == inode_) {
        ::unlink(path_.c_str());
    }
}

void SocketBackend::attach(VirtioContext& context, Events& events) {
    context_ = &context;
    events_ = &events;
    accept_failed_ = false;
    want_input_ = false;
    waiting_output_ = false;
    context.watch_fd(listen_.get(), client_ ? 0u : std::uint32_t{EPOLLIN},
                     [this](std::uint32_t) { accept_client(); });
    if (client_) {
        client_events_ = client_mask();
        context.watch_fd(client_.get(), client_events_,
                         [this, generation = generation_](std::uint32_t ready) {
                             client_event(ready, generation);
                         });
    }
}

void SocketBackend::detach() {
    // The worker's epoll, and every watch in it, is gone already.
    context_ = nullptr;
    events_ = nullptr;
    client_events_ = 0;
    want_input_ = false;
    waiting_output_ = false;
}

void SocketBackend::accept_client() {
    if (client_ || context_ == nullptr) return;
    base::UniqueFd client(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!client) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
            return;
        }
        // Out of fds or memory: the listen socket would stay readable and
        // spin the worker; stop accepting until the guest resets the device.
        vmm::log::warn("virtio-console: accept on {}: {}; no new clients until a device reset",
                       path_, std::strerror(errno));
        accept_failed_ = true;
        context_->set_fd_events(listen_.get(), 0);
        return;
    }
    client_ = std::move(client);
    ++generation_;
    input_closed_ = false;
    output_closed_ = false;
    waiting_output_ = false;
    context_->set_fd_events(listen_.get(), 0);
    client_events_ = client_mask();
    context_->watch_fd(
        client_.get(), client_events_,
        [this, generation = generation_](std::uint32_t ready) { client_event(ready, generation); });
    if (dropped_ > 0) {
        vmm::log::info(
            "virtio-console: client connected on {} ({} bytes of guest output were dropped "
            "while none was)",
            path_, dropped_);
    } else {
        vmm::log::info("virtio-console: client connected on {}", path_);
    }
    dropped_ = 0;
}

void SocketBackend::client_event(std::uint32_t ready, std::uint64_t generation) {
    // An event of a client closed earlier in the same epoll batch.
    if (generation != generation_ || !client_) return;
    if ((ready & (EPOLLHUP | EPOLLERR)) != 0) {
        const bool was_waiting = waiting_output_;
        hang_up();
        if (was_waiting) events_->output_ready();  // to drop what was pending
        if (want_input_ && leftover_read_ < leftover_.size()) events_->input_ready();
        return;
    }
    if ((ready & EPOLLOUT) != 0) {
        waiting_output_ = false;
        update_client_events();
        events_->output_ready();
    }
    if ((ready & EPOLLIN) != 0 && generation == generation_) events_->input_ready();
}

void SocketBackend::hang_up() {
    // Keep what the client sent before it left, for the guest: the listen
    // socket is then free for the next client at once.
    if (leftover_read_ == leftover_.size()) {
        leftover_.clear();
        leftover_read_ = 0;
    }
    std::uint64_t lost = 0;
    std::array<std::uint8_t, 16384> chunk{};
    while (!input_closed_) {
        const ssize_t got = ::read(client_.get(), chunk.data(), chunk.size());
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        const std::size_t keep =
            std::min<std::size_t>(static_cast<std::size_t>(got), kMaxLeftover - leftover_.size());
        leftover_.insert(leftover_.end(), chunk.begin(), chunk.begin() + keep);
        lost += static_cast<std::size_t>(got) - keep;
    }
    if (lost > 0) {
        vmm::log::warn("virtio-console: client on {} left {} bytes the guest had no room for",
                       path_, lost);
    }
    close_client();
}

void SocketBackend::close_client() {
    client_.reset();  // closing also removes it from the worker's epoll
    ++generation_;
    client_events_ = 0;
    waiting_output_ = false;
    input_closed_ = false;
    output_closed_ = false;
    vmm::log::info("virtio-console: client on {} disconnected", path_);
    if (context_ != nullptr && !accept_failed_) context_->set_fd_events(listen_.get(), EPOLLIN);
}

std::uint32_t SocketBackend::client_mask() const {
    std::uint32_t mask = 0;
    if (want_input_ && !input_closed_) mask |= EPOLLIN;
    if (waiting_output_) mask |= EPOLLOUT;
    // EPOLLHUP and EPOLLERR are always reported: a client leaving is seen
    // even while neither direction is watched.
    return mask;
}

void SocketBackend::update_client_events() {
    if (context_ == nullptr || !client_) return;
    const std::uint32_t mask = client_mask();
    if (mask == client_events_) return;
    context_->set_fd_events(client_.get(), mask);
    client_events_ = mask;
}

std::size_t SocketBackend::read_leftover(std::span<const iovec> buffers) {
    std::size_t copied = 0;
    for (const auto& buffer : buffers) {
        const std::size_t take = std::min(buffer.iov_len, leftover_.size() - leftover_read_);
        std::memcpy(buffer.iov_base, leftover_.data() + leftover_read_, take);
        leftover_read_ += take;
        copied += take;
        if (leftover_read_ == leftover_.size()) break;
    }
    if (leftover_read_ == leftover_.size()) {
        leftover_.clear();
        leftover_.shrink_to_fit();
        leftover_read_ = 0;
    }
    return copied;
}

std::size_t SocketBackend::read(std::span<const iovec> buffers) {
    if (leftover_read_ < leftover_.size()) return read_leftover(buffers);
    if (!client_ || input_closed_ || buffers.empty()) return 0;
    for (;;) {
        const ssize_t got =
            ::readv(client_.get(), buffers.data(), static_cast<int>(buffers.size()));
        if (got > 0) return static_cast<std::size_t>(got);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        // End of input: a half-close (the client may still read guest output)
        // or an error; a client that has gone is closed on its HUP/ERR event.
        if (got < 0) {
            vmm::log::info("virtio-console: reading from the client on {}: {}", path_,
                           std::strerror(errno));
        }
        input_closed_ = true;
        update_client_events();
        return 0;
    }
}

ConsoleBackend::WriteResult SocketBackend::write(std::span<const iovec> buffers) {
    const std::uint64_t total = total_bytes(buffers);
    if (total == 0) return {WriteStatus::Written, 0};
    if (!client_ || output_closed_) {
        dropped_ += total;
        return {WriteStatus::Dropped, static_cast<std::size_t>(total)};
    }
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(buffers.data());  // sendmsg does not write it
    message.msg_iovlen = buffers.size();
    for (;;) {
        // MSG_NOSIGNAL: a client gone mid-write is EPIPE, not a SIGPIPE for the vmm.
        const ssize_t sent = ::sendmsg(client_.get(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) return {WriteStatus::Written, static_cast<std::size_t>(sent)};
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return {WriteStatus::WouldBlock, 0};
        }
        break;
    }
    // EPIPE, ECONNRESET: the client stopped reading or has gone (then its
    // HUP/ERR event closes it); output is dropped from now on.
    output_closed_ = true;
    waiting_output_ = false;
    update_client_events();
    dropped_ += total;
    return {WriteStatus::Dropped, static_cast<std::size_t>(total)};
}

void SocketBackend::want_input(bool wanted) {
    want_input_ = wanted;
    update_client_events();
}

void SocketBackend::want_output() {
    waiting_output_ = true;
    update_client_events();
}

}  // namespace devices::virtio
