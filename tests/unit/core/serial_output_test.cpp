// vmm::SerialOutput, COM1's sink: a FIFO without a reader is refused at once
// instead of blocking open(), a sink whose reader went away is reported once
// and then ignored, and a write blocked on a full sink gives up on a kick
// once the VM is stopping (and only then: other interruptions lose nothing).
#include "vmm/serial_output.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "vmm/vcpu_runner.hpp"

namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Long enough for any loaded CI machine; a correct sink answers in microseconds.
constexpr auto kBound = 10s;

class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern = (fs::temp_directory_path() / "vmm-serial-test.XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) base::throw_errno("mkdtemp {}", pattern);
        path_ = pattern;
    }
    ~ScratchDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    fs::path operator/(const char* name) const { return path_ / name; }

  private:
    fs::path path_;
};

vmm::SerialConfig file_config(const fs::path& path) {
    return {vmm::SerialConfig::Mode::File, path.string()};
}

base::UniqueFd open_or_throw(const fs::path& path, int flags) {
    base::UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd) base::throw_errno("open {}", path.string());
    return fd;
}

std::string read_available(int fd) {
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) return text;
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

std::span<const std::uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Fills the FIFO at `path` (which has a reader) through a writer of its own.
std::size_t fill_fifo(const fs::path& path) {
    const auto writer = open_or_throw(path, O_WRONLY | O_NONBLOCK);
    const std::string chunk(4096, 'f');
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::write(writer.get(), chunk.data(), chunk.size());
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EAGAIN) return total;
        base::throw_errno("filling FIFO {}", path.string());
    }
}

// Ignores SIGPIPE while alive, as `vmm`'s main() does for the whole process.
class IgnoreSigpipe {
  public:
    IgnoreSigpipe() {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGPIPE, &ignore, &saved_);
    }
    ~IgnoreSigpipe() { ::sigaction(SIGPIPE, &saved_, nullptr); }

  private:
    struct sigaction saved_ {};
};

// Sends fd 2 (where vmm::log writes) to a file while alive.
class CaptureStderr {
  public:
    explicit CaptureStderr(const fs::path& path)
        : file_(open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC)), saved_(::dup(STDERR_FILENO)) {
        ::dup2(file_.get(), STDERR_FILENO);
    }
    ~CaptureStderr() { ::dup2(saved_.get(), STDERR_FILENO); }

  private:
    base::UniqueFd file_;
    base::UniqueFd saved_;
};

std::string file_text(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(SerialOutput, AFileGetsTheBytes) {
    ScratchDir scratch;
    vmm::StopController stop;
    vmm::SerialOutput output(file_config(scratch / "serial.log"), stop);
    output.write(bytes_of("hello "));
    output.write(bytes_of("guest\n"));
    EXPECT_EQ(file_text(scratch / "serial.log"), "hello guest\n");
}

TEST(SerialOutput, AMissingDirectoryNamesThePath) {
    ScratchDir scratch;
    vmm::StopController stop;
    const auto path = scratch / "missing" / "serial.log";
    try {
        vmm::SerialOutput output(file_config(path), stop);
        FAIL() << "opened " << path;
    } catch (const base::Error& error) {
        EXPECT_THAT(error.what(), HasSubstr(path.string()));
    }
}

TEST(SerialOutput, AFifoWithoutAReaderIsRefusedInsteadOfWaitedFor) {
    ScratchDir scratch;
    const auto fifo = scratch / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
    vmm::StopController stop;
    auto opening = std::async(std::launch::async, [&]() -> std::string {
        try {
            vmm::SerialOutput output(file_config(fifo), stop);
        } catch (const base::Error& error) {
            return error.what();
        }
        return "(opened)";
    });
    if (opening.wait_for(kBound) != std::future_status::ready) {
        // open() is waiting for a reader: give it one so the test can end.
        const auto reader = open_or_throw(fifo, O_RDONLY | O_NONBLOCK);
        opening.wait();
        FAIL() << "open() of a FIFO without a reader blocked";
    }
    const auto message = opening.get();
    EXPECT_THAT(message, HasSubstr(fifo.string()));
    EXPECT_THAT(message, HasSubstr("FIFO with no reader"));
    EXPECT_THAT(message, ::testing::Not(HasSubstr("\n")));
}

TEST(SerialOutput, AFifoWithAReaderGetsTheBytes) {
    ScratchDir scratch;
    const auto fifo = scratch / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
    const auto reader = open_or_throw(fifo, O_RDONLY | O_NONBLOCK);
    vmm::StopController stop;
    vmm::SerialOutput output(file_config(fifo), stop);
    output.write(bytes_of("through the fifo\n"));
    EXPECT_EQ(read_available(reader.get()), "through the fifo\n");
}

TEST(SerialOutput, AReaderThatWentAwayIsReportedOnceAndThenIgnored) {
    ScratchDir scratch;
    const auto fifo = scratch / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
    auto reader = open_or_throw(fifo, O_RDONLY | O_NONBLOCK);
    vmm::StopController stop;
    vmm::SerialOutput output(file_config(fifo), stop);
    output.write(bytes_of("seen\n"));
    EXPECT_EQ(read_available(reader.get()), "seen\n");
    reader.reset();  // like `head` exiting

    const IgnoreSigpipe ignore_sigpipe;
    {
        const CaptureStderr capture(scratch / "stderr");
        for (int i = 0; i < 100; ++i) output.write(bytes_of("lost\n"));
    }
    const auto log = file_text(scratch / "stderr");
    EXPECT_THAT(log, HasSubstr("serial output to " + fifo.string() + " failed"));
    EXPECT_THAT(log, HasSubstr(std::strerror(EPIPE)));
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    EXPECT_FALSE(stop.stopping()) << "a broken console must not stop the VM";
}

// A thread blocked in SerialOutput::write on a FIFO that is full and never
// drained, as a vCPU is when stdout is a pipe nobody reads.
class BlockedWrite : public ::testing::Test {
  protected:
    void SetUp() override {
        vmm::VcpuRunner::install_kick_handler();
        ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0) << std::strerror(errno);
        reader_ = open_or_throw(fifo_, O_RDONLY | O_NONBLOCK);
        output_.emplace(file_config(fifo_), stop_);
        prefilled_ = fill_fifo(fifo_);
    }

    void start_write() {
        writing_ = std::async(std::launch::async, [this] {
            thread_ = ::pthread_self();
            thread_known_.set_value();
            output_->write(bytes_of(payload_));
        });
        thread_known_.get_future().wait();
    }

    // Kicks the writer as the stop path does, every 10 ms, until it returns
    // or `bound` passes. Returns whether it returned.
    bool kick_until_done(std::chrono::milliseconds bound) {
        const auto deadline = std::chrono::steady_clock::now() + bound;
        while (std::chrono::steady_clock::now() < deadline) {
            ::pthread_kill(thread_, vmm::VcpuRunner::kick_signal());
            if (writing_.wait_for(10ms) == std::future_status::ready) return true;
        }
        return false;
    }

    // Reads everything: the prefill, then whatever the writer still sends.
    std::string drain_until_done() {
        std::string text;
        while (writing_.wait_for(1ms) != std::future_status::ready) {
            text += read_available(reader_.get());
        }
        return text + read_available(reader_.get());
    }

    void TearDown() override {
        if (writing_.valid()) drain_until_done();
    }

    ScratchDir scratch_;
    fs::path fifo_ = scratch_ / "fifo";
    base::UniqueFd reader_;
    vmm::StopController stop_;
    std::optional<vmm::SerialOutput> output_;
    std::size_t prefilled_ = 0;
    const std::string payload_ = std::string(100, 'p');
    std::promise<void> thread_known_;
    pthread_t thread_{};
    std::future<void> writing_;
};

TEST_F(BlockedWrite, GivesUpOnAKickOnceTheVmIsStopping) {
    stop_.request(vmm::StopReason::Signal, "SIGTERM");
    start_write();
    EXPECT_TRUE(kick_until_done(kBound))
        << "the write retried EINTR and stayed blocked on the full FIFO";
}

TEST_F(BlockedWrite, LosesNothingToAKickWhileTheVmRuns) {
    start_write();
    for (int i = 0; i < 5; ++i) {
        ::pthread_kill(thread_, vmm::VcpuRunner::kick_signal());
        ASSERT_NE(writing_.wait_for(10ms), std::future_status::ready)
            << "the write returned although the FIFO is still full";
    }
    const auto text = drain_until_done();
    EXPECT_EQ(text.size(), prefilled_ + payload_.size());
    EXPECT_EQ(text.substr(prefilled_), payload_);
}

}  // namespace
