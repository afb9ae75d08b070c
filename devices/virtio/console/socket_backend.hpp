// virtio-console's host end on a unix stream socket (--console socket=PATH).
// The vmm listens at PATH from construction, before the guest runs, until it
// exits (then it removes PATH). One client at a time: bytes flow both ways
// while it is connected; a client leaving is not an error and the next one
// may connect (later ones wait in the listen backlog meanwhile). Guest output
// while no client is connected is dropped and counted, never buffered.
//
// A client that sends and then hangs up before the guest had room for all of
// it: what it sent (up to kMaxLeftover) is kept for the guest, the rest is
// dropped, and the next client may connect at once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "devices/virtio/console/console_backend.hpp"

namespace devices::virtio {

class SocketBackend : public ConsoleBackend {
  public:
    static constexpr std::size_t kMaxLeftover = 1 << 20;

    // Binds and listens. Throws base::Error naming PATH when it exists
    // already, its directory does not, or it is too long for a socket.
    explicit SocketBackend(std::string path);
    // Removes PATH if it is still the socket this object bound.
    ~SocketBackend() override;
    SocketBackend(const SocketBackend&) = delete;
    SocketBackend& operator=(const SocketBackend&) = delete;

    std::string describe() const override { return "socket " + path_; }
    void attach(VirtioContext& context, Events& events) override;
    void detach() override;
    std::size_t read(std::span<const iovec> buffers) override;
    WriteResult write(std::span<const iovec> buffers) override;
    void want_input(bool wanted) override;
    void want_output() override;

  private:
    void accept_client();
    void client_event(std::uint32_t events, std::uint64_t generation);
    // The client is gone: keep what it sent for the guest, then close.
    void hang_up();
    void close_client();
    std::uint32_t client_mask() const;
    void update_client_events();
    std::size_t read_leftover(std::span<const iovec> buffers);

    std::string path_;
    base::UniqueFd listen_;
    dev_t device_ = 0;  // identity of the socket inode we bound
    ino_t inode_ = 0;
    VirtioContext* context_ = nullptr;
    Events* events_ = nullptr;
    bool accept_failed_ = false;  // stop listening until the next attach()

    base::UniqueFd client_;
    std::uint64_t generation_ = 0;  // tells a closed client's stale events apart
    std::uint32_t client_events_ = 0;
    bool want_input_ = false;
    bool waiting_output_ = false;
    bool input_closed_ = false;   // the client shut its sending side (or failed)
    bool output_closed_ = false;  // sending to the client failed: drop output
    std::uint64_t dropped_ = 0;   // guest output dropped since the last client

    std::vector<std::uint8_t> leftover_;
    std::size_t leftover_read_ = 0;
};

}  // namespace devices::virtio
