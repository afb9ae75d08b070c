// virtio-console's host end on a new pseudo-terminal (--console pty): the vmm
// allocates it, logs its path (/dev/pts/N) and keeps it in raw mode so bytes
// pass unchanged; attach with `screen /dev/pts/N` or any program.
//
// The vmm holds the terminal side open itself, so the pty never hangs up
// while nobody is attached. Guest output the terminal has no room for (no
// one reading) is dropped and counted, as a socket without a client: it must
// not stall the guest, whose console writes wait for the host.
#pragma once

#include <string>

#include "base/unique_fd.hpp"
#include "devices/virtio/console/console_backend.hpp"

namespace devices::virtio {

class PtyBackend : public ConsoleBackend {
  public:
    // Throws base::Error when no pty can be allocated.
    PtyBackend();

    const std::string& path() const { return path_; }
    std::string describe() const override { return "pty " + path_; }
    void attach(VirtioContext& context, Events& events) override;
    void detach() override;
    std::size_t read(std::span<const iovec> buffers) override;
    WriteResult write(std::span<const iovec> buffers) override;
    void want_input(bool wanted) override;
    void want_output() override {}

  private:
    base::UniqueFd master_;
    base::UniqueFd terminal_;  // our own open of the terminal side
    std::string path_;
    VirtioContext* context_ = nullptr;
    bool want_input_ = false;
};

}  // namespace devices::virtio
