// virtio-console's host end on a file (--console file=PATH): guest output is
// appended to PATH (created if missing, never truncated); there is no input.
// A failed write (disk full) drops that output with one warning, it never
// fails the device: the guest did nothing wrong.
#pragma once

#include <string>

#include "base/unique_fd.hpp"
#include "devices/virtio/console/console_backend.hpp"

namespace devices::virtio {

class FileBackend : public ConsoleBackend {
  public:
    // Opens PATH for appending. Throws base::Error naming PATH (or its
    // missing directory).
    explicit FileBackend(std::string path);

    std::string describe() const override { return "file " + path_; }
    void attach(VirtioContext& /*context*/, Events& /*events*/) override {}
    void detach() override {}
    std::size_t read(std::span<const iovec> /*buffers*/) override { return 0; }
    WriteResult write(std::span<const iovec> buffers) override;
    void want_input(bool /*wanted*/) override {}
    void want_output() override {}

  private:
    std::string path_;
    base::UniqueFd fd_;
    bool warned_ = false;
};

}  // namespace devices::virtio
