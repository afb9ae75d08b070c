// The VMM on a terminal, through a pty that is its stdin, stdout and
// controlling terminal: with --serial stdio the terminal is raw while the VM
// runs (Ctrl-C reaches the guest, Ctrl-A x quits) and restored after; with
// COM1 elsewhere the terminal is left alone, so Ctrl-C stops the VMM.
// Needs /dev/kvm (skipped without it).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "tests/integration/harness.hpp"

namespace vmm::test {
namespace {

void set_cloexec_nonblocking(const base::UniqueFd& fd) {
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (::fcntl(fd.get(), F_SETFD, FD_CLOEXEC) < 0 || flags < 0 ||
        ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
        base::throw_errno("fcntl on fd {}", fd.get());
    }
}

// Reads `fd` (non-blocking) into `text` until it holds `needle`, or until
// `deadline`. Returns whether it does.
bool read_until(int fd, std::string& text, std::string_view needle, Clock::time_point deadline) {
    while (text.find(needle) == std::string::npos) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        pollfd entry{fd, POLLIN, 0};
        if (::poll(&entry, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000))) < 0 &&
            errno != EINTR) {
            base::throw_errno("poll");
        }
        char buffer[1024];
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
}

class Pty {
  public:
    Pty() {
        int master = -1;
        int slave = -1;
        if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0)
            base::throw_errno("openpty");
        master_.reset(master);
        slave_.reset(slave);
        set_cloexec_nonblocking(master_);
        // The child gets copies through dup2; ours must not leak into it.
        if (::fcntl(slave_.get(), F_SETFD, FD_CLOEXEC) < 0) base::throw_errno("fcntl on the pty");
    }

    int slave() const { return slave_.get(); }
    termios attributes() const {
        termios now{};
        if (::tcgetattr(slave_.get(), &now) != 0) base::throw_errno("tcgetattr on the pty");
        return now;
    }
    bool wait_for(std::string_view needle, Clock::time_point deadline) {
        return read_until(master_.get(), output_, needle, deadline);
    }
    // Types `keys` as a user at the terminal would.
    void type(std::string_view keys) {
        if (::write(master_.get(), keys.data(), keys.size()) != static_cast<ssize_t>(keys.size())) {
            base::throw_errno("writing to the pty");
        }
    }
    const std::string& output() const { return output_; }

  private:
    base::UniqueFd master_;
    base::UniqueFd slave_;  // kept open so the terminal outlives the child
    std::string output_;
};

::testing::AssertionResult same_settings(const termios& expected, const termios& actual) {
    if (expected.c_iflag == actual.c_iflag && expected.c_oflag == actual.c_oflag &&
        expected.c_cflag == actual.c_cflag && expected.c_lflag == actual.c_lflag &&
        expected.c_cc[VMIN] == actual.c_cc[VMIN] && expected.c_cc[VTIME] == actual.c_cc[VTIME]) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << std::hex << "iflag " << expected.c_iflag << " -> " << actual.c_iflag << ", lflag "
           << expected.c_lflag << " -> " << actual.c_lflag << ", oflag " << expected.c_oflag
           << " -> " << actual.c_oflag;
}

std::vector<std::string> vmm_argv(std::vector<std::string> args) {
    args.insert(args.begin(), vmm_binary().string());
    return args;
}

class Terminal : public KvmTest {
  protected:
    void SetUp() override {
        KvmTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        cooked_ = pty_.attributes();
        ASSERT_TRUE(cooked_.c_lflag & ICANON) << "a fresh pty starts in canonical mode";
        ASSERT_TRUE(cooked_.c_lflag & ISIG);
    }

    Pty pty_;
    termios cooked_{};
};

TEST_F(Terminal, IsRawWhileTheGuestRunsAndRestoredAfterCtrlAX) {
    const auto deadline = Clock::now() + scaled(kGuestTimeout);
    Subprocess vmm(vmm_argv(run_args("spin")), {.terminal_fd = pty_.slave()});
    ASSERT_TRUE(pty_.wait_for("spin: spinning", deadline)) << pty_.output() << "\n"
                                                           << vmm.wait(deadline).describe();

    const termios raw = pty_.attributes();
    EXPECT_EQ(raw.c_lflag & (ICANON | ECHO | ISIG | IEXTEN), 0u) << std::hex << raw.c_lflag;
    EXPECT_EQ(raw.c_iflag & (ICRNL | IXON), 0u) << std::hex << raw.c_iflag;
    EXPECT_NE(raw.c_oflag & OPOST, 0u) << "host log lines still need \\n -> \\r\\n";
    EXPECT_EQ(raw.c_cc[VMIN], 1);

    pty_.type("\x01x");
    const auto result = vmm.wait(deadline);
    EXPECT_FALSE(result.timed_out) << "Ctrl-A x did not quit\n" << result.describe();
    EXPECT_EQ(result.exit_code(), 128 + SIGINT) << result.describe();
    EXPECT_TRUE(same_settings(cooked_, pty_.attributes())) << "the terminal was not restored";
}

TEST_F(Terminal, CtrlCGoesToTheGuestInRawMode) {
    const auto deadline = Clock::now() + scaled(kGuestTimeout);
    Subprocess vmm(vmm_argv(run_args("echo")), {.terminal_fd = pty_.slave()});
    ASSERT_TRUE(pty_.wait_for("echo: ready", deadline)) << pty_.output() << "\n"
                                                        << vmm.wait(deadline).describe();
    // Enter sends \r; without ICRNL the guest gets it as \r, its end of line.
    pty_.type("ab\x03x\r");
    EXPECT_TRUE(pty_.wait_for("echo: done", deadline)) << pty_.output();
    const auto result = vmm.wait(deadline);
    EXPECT_EQ(result.exit_code(), 0) << "Ctrl-C must not stop the VMM\n" << result.describe();
    EXPECT_NE(pty_.output().find("AB\x03X"), std::string::npos) << pty_.output();
    EXPECT_TRUE(same_settings(cooked_, pty_.attributes()));
}

// With COM1 in a FIFO, nothing reads the terminal: it must stay as it was,
// so that Ctrl-C is the terminal's interrupt and stops the VMM.
TEST_F(Terminal, IsLeftAloneWhenComOneGoesElsewhereSoCtrlCStops) {
    const auto deadline = Clock::now() + scaled(kGuestTimeout);
    ScratchDir scratch;
    const auto fifo = scratch / "com1.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const base::UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(reader);
    Subprocess vmm(vmm_argv(run_args("spin", {"--serial", "file:" + fifo.string()})),
                   {.terminal_fd = pty_.slave()});
    std::string com1;
    ASSERT_TRUE(read_until(reader.get(), com1, "spin: spinning", deadline))
        << com1 << "\n"
        << vmm.wait(deadline).describe();

    EXPECT_TRUE(same_settings(cooked_, pty_.attributes())) << "raw mode without --serial stdio";
    pty_.type("\x03");
    const auto result = vmm.wait(deadline);
    EXPECT_FALSE(result.timed_out) << "Ctrl-C did nothing\n" << result.describe();
    EXPECT_EQ(result.exit_code(), 128 + SIGINT) << result.describe();
}

}  // namespace
}  // namespace vmm::test
