// A small process runner for the integration tests: spawns a program with
// pipes for stdin, stdout and stderr, and waits on them and on the child's
// pidfd with poll() against a deadline. Nothing sleeps: every wait is a
// poll() on the fds that can make progress. A child still running at its
// deadline is killed with SIGKILL and reported as timed out.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.hpp"

namespace vmm::test {

using Clock = std::chrono::steady_clock;

enum class Stream { Stdout, Stderr };

struct ExitStatus {
    bool exited = false;  // returned from main / called exit
    int code = -1;        // the exit code when `exited`
    int signal = 0;       // the terminating signal when not `exited`

    std::string describe() const;
};

struct RunResult {
    ExitStatus status;
    bool timed_out = false;  // killed with SIGKILL at the deadline
    std::string out;
    std::string err;
    std::chrono::milliseconds elapsed{0};

    // Exit code when the process exited by itself, -1 otherwise.
    int exit_code() const { return status.exited && !timed_out ? status.code : -1; }
    // Status, time and both outputs, for assertion messages.
    std::string describe() const;
};

struct SpawnOptions {
    enum class Stdin { Pipe, DevNull };
    Stdin stdin_mode = Stdin::Pipe;
    // >= 0: the child's stdout is a copy of this fd (a pipe nobody reads, one
    // whose reader is gone, a file), left to the caller and not collected.
    int stdout_fd = -1;
    // >= 0: a terminal (a pty's slave end) that becomes the child's stdin,
    // stdout and controlling terminal, in a new session; `stdin_mode` and
    // `stdout_fd` then do not apply and only stderr is collected.
    int terminal_fd = -1;
    // "NAME=value" entries added to (or replacing those in) the environment.
    std::vector<std::string> environment{};
};

class Subprocess {
  public:
    // Starts argv[0] (a path, not searched in PATH). Throws base::Error
    // (base::SystemError when a system call failed).
    explicit Subprocess(const std::vector<std::string>& argv, SpawnOptions options = {});
    // Kills (SIGKILL) and reaps a child that is still running.
    ~Subprocess();
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;

    pid_t pid() const { return pid_; }

    // Collects output until `needle` appears in `stream`, the child exits and
    // its pipes close, or `deadline` passes. Returns whether it appeared.
    bool wait_for_output(Stream stream, std::string_view needle, Clock::time_point deadline);
    // Writes all of `data` to the child's stdin (Pipe mode), bounded by
    // `deadline`. Returns false if the child closed its end or time ran out.
    bool write_stdin(std::string_view data, Clock::time_point deadline);
    void close_stdin();
    void send_signal(int signal);
    // Waits for the child to exit and for EOF on its output (SIGKILL at the
    // deadline), then returns everything collected.
    RunResult wait(Clock::time_point deadline);

    const std::string& out() const { return out_; }
    const std::string& err() const { return err_; }

  private:
    // One poll() round bounded by `deadline`; false once the deadline passed.
    bool pump(Clock::time_point deadline);
    void reap(int options);
    void kill_and_reap();
    bool finished() const { return exited_ && !stdout_ && !stderr_; }

    pid_t pid_ = -1;
    base::UniqueFd pidfd_;
    base::UniqueFd stdin_;
    base::UniqueFd stdout_;
    base::UniqueFd stderr_;
    bool exited_ = false;
    bool timed_out_ = false;
    ExitStatus status_;
    Clock::time_point start_;
    Clock::time_point exit_time_;
    std::string out_;
    std::string err_;
};

// Runs argv to completion with `timeout` (stdin: an open, empty pipe unless
// `options` says otherwise).
RunResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      SpawnOptions options = {});

// pipe2(O_CLOEXEC) as two owned ends. Throws base::SystemError.
struct Pipe {
    base::UniqueFd read;
    base::UniqueFd write;
};
Pipe make_pipe();

}  // namespace vmm::test
