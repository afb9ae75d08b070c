#include "tests/integration/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>

#include "base/error.hpp"

extern char** environ;

namespace vmm::test {

namespace {

// After the child exited, output that is still open (a grandchild holding
// the pipe) is given this long to reach EOF before it is abandoned.
constexpr auto kDrainAfterExit = std::chrono::seconds(2);
// Output kept in a failure message, per stream.
constexpr std::size_t kDescribeLimit = 16 * 1024;

void set_nonblocking(const base::UniqueFd& fd) {
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
        base::throw_errno("fcntl(O_NONBLOCK) on fd {}", fd.get());
    }
}

int poll_timeout_ms(Clock::time_point deadline) {
    const auto now = Clock::now();
    if (now >= deadline) return 0;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    return left > 60'000 ? 60'000 : static_cast<int>(left);
}

std::string tail(const std::string& text) {
    if (text.size() <= kDescribeLimit) return text;
    return "[... " + std::to_string(text.size() - kDescribeLimit) + " bytes cut ...]" +
           text.substr(text.size() - kDescribeLimit);
}

// Signals the child must start with at their default action, whatever the
// test process did with them (an ignored SIGPIPE or SIGTERM would survive
// exec and change the VMM's behaviour).
constexpr std::array kResetSignals = {SIGPIPE, SIGINT,  SIGTERM, SIGQUIT, SIGHUP,
                                      SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD};

std::string_view variable_name(std::string_view entry) {
    return entry.substr(0, entry.find('='));
}

// This process's environment with `extra` added; an entry of `extra` replaces
// one of the same name. Built before fork: the child may not allocate.
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> entries;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view name = variable_name(*entry);
        bool replaced = false;
        for (const auto& added : extra) replaced = replaced || variable_name(added) == name;
        if (!replaced) entries.emplace_back(*entry);
    }
    entries.insert(entries.end(), extra.begin(), extra.end());
    return entries;
}

std::vector<char*> null_terminated(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (auto& text : strings) pointers.push_back(text.data());
    pointers.push_back(nullptr);
    return pointers;
}

// In the child, between fork and exec: reports errno through the exec-status
// pipe and exits. Async-signal-safe.
[[noreturn]] void child_fail(int status_fd) {
    const int saved = errno;
    [[maybe_unused]] auto n = ::write(status_fd, &saved, sizeof saved);
    ::_exit(127);
}

}  // namespace

Pipe make_pipe() {
    std::array<int, 2> fds{-1, -1};
    if (::pipe2(fds.data(), O_CLOEXEC) < 0) base::throw_errno("pipe2");
    return Pipe{base::UniqueFd(fds[0]), base::UniqueFd(fds[1])};
}

std::string ExitStatus::describe() const {
    if (exited) return "exit code " + std::to_string(code);
    if (signal != 0) {
        const char* name = ::sigabbrev_np(signal);
        return "killed by signal " + std::to_string(signal) +
               (name ? " (SIG" + std::string(name) + ")" : "");
    }
    return "still running";
}

std::string RunResult::describe() const {
    std::ostringstream text;
    if (timed_out) {
        text << "TIMED OUT: still running at the deadline, killed with SIGKILL";
    } else {
        text << status.describe();
    }
    text << ", " << elapsed.count() << " ms\n--- stdout ---\n"
         << tail(out) << "\n--- stderr ---\n"
         << tail(err) << "\n--------------";
    return text.str();
}

Subprocess::Subprocess(const std::vector<std::string>& argv, SpawnOptions options) {
    if (argv.empty()) throw base::Error("Subprocess: empty argv");
    std::vector<std::string> arg_strings = argv;
    const auto args = null_terminated(arg_strings);
    std::vector<std::string> env_strings = child_environment(options.environment);
    const auto envp = null_terminated(env_strings);

    const bool terminal = options.terminal_fd >= 0;
    Pipe in;
    base::UniqueFd dev_null;
    if (!terminal && options.stdin_mode == SpawnOptions::Stdin::Pipe) in = make_pipe();
    if (!terminal && options.stdin_mode == SpawnOptions::Stdin::DevNull) {
        dev_null.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!dev_null) base::throw_errno("opening /dev/null for the child's stdin");
    }
    Pipe out;
    if (!terminal && options.stdout_fd < 0) out = make_pipe();
    Pipe err = make_pipe();
    Pipe exec_status = make_pipe();  // carries errno from a failed execve

    const int in_fd = terminal ? options.terminal_fd : in.read ? in.read.get() : dev_null.get();
    const int out_fd = terminal                 ? options.terminal_fd
                       : options.stdout_fd >= 0 ? options.stdout_fd
                                                : out.write.get();
    const pid_t parent = ::getpid();
    start_ = Clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) base::throw_errno("fork for {}", argv[0]);
    if (pid == 0) {
        // Child: async-signal-safe calls only. Die with the test process so
        // that a killed test run leaves no VMM spinning behind.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        const int status_fd = exec_status.write.get();
        if (terminal && (::setsid() < 0 || ::ioctl(options.terminal_fd, TIOCSCTTY, 0) < 0)) {
            child_fail(status_fd);
        }
        // dup2 clears FD_CLOEXEC on the copies; the originals close at exec.
        if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err.write.get(), 2) < 0) {
            child_fail(status_fd);
        }
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (const int sig : kResetSignals) ::sigaction(sig, &dfl, nullptr);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execve(args[0], args.data(), envp.data());
        child_fail(status_fd);
    }

    pid_ = pid;
    stdin_ = std::move(in.write);
    stdout_ = std::move(out.read);
    stderr_ = std::move(err.read);
    // Only the child may hold the write end, or the read below never ends.
    exec_status.write.reset();

    // The exec-status pipe closes at a successful exec, or carries the errno.
    int child_errno = 0;
    ssize_t got;
    do {
        got = ::read(exec_status.read.get(), &child_errno, sizeof child_errno);
    } while (got < 0 && errno == EINTR);
    if (got == sizeof child_errno) {
        reap(0);
        throw base::SystemError(child_errno, "cannot execute " + argv[0]);
    }

    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    if (!pidfd_) {
        const int saved = errno;
        kill_and_reap();
        throw base::SystemError(saved, fmt::format("pidfd_open for pid {}", pid_));
    }
    if (stdout_) set_nonblocking(stdout_);
    set_nonblocking(stderr_);
    if (stdin_) set_nonblocking(stdin_);
}

Subprocess::~Subprocess() {
    if (!exited_ && pid_ > 0) kill_and_reap();
}

void Subprocess::reap(int options) {
    if (exited_) return;
    int raw = 0;
    pid_t got;
    do {
        got = ::waitpid(pid_, &raw, options);
    } while (got < 0 && errno == EINTR);
    if (got != pid_) return;
    exited_ = true;
    exit_time_ = Clock::now();
    if (WIFEXITED(raw)) {
        status_.exited = true;
        status_.code = WEXITSTATUS(raw);
    } else if (WIFSIGNALED(raw)) {
        status_.signal = WTERMSIG(raw);
    }
    pidfd_.reset();
}

void Subprocess::kill_and_reap() {
    if (exited_) return;
    ::kill(pid_, SIGKILL);
    reap(0);  // SIGKILL cannot be caught: this returns promptly
}

void Subprocess::send_signal(int signal) {
    if (!exited_) ::kill(pid_, signal);
}

void Subprocess::close_stdin() {
    stdin_.reset();
}

bool Subprocess::pump(Clock::time_point deadline) {
    if (exited_ && Clock::now() > exit_time_ + kDrainAfterExit) {
        // Someone else holds the pipes open; what the child wrote is in.
        stdout_.reset();
        stderr_.reset();
        return Clock::now() < deadline;
    }
    std::array<pollfd, 3> fds{};
    std::array<base::UniqueFd*, 3> owners{};
    nfds_t count = 0;
    for (base::UniqueFd* fd : {&stdout_, &stderr_, &pidfd_}) {
        if (!*fd) continue;
        fds[count] = pollfd{fd->get(), POLLIN, 0};
        owners[count] = fd;
        ++count;
    }
    if (count == 0) return Clock::now() < deadline;
    auto wait_until = deadline;
    if (exited_ && exit_time_ + kDrainAfterExit < wait_until) {
        wait_until = exit_time_ + kDrainAfterExit;
    }
    const int ready = ::poll(fds.data(), count, poll_timeout_ms(wait_until));
    if (ready < 0 && errno != EINTR) base::throw_errno("poll on the child's output");
    for (nfds_t i = 0; ready > 0 && i < count; ++i) {
        if (fds[i].revents == 0) continue;
        if (owners[i] == &pidfd_) {
            reap(WNOHANG);
            continue;
        }
        std::string& sink = owners[i] == &stdout_ ? out_ : err_;
        char buffer[4096];
        for (;;) {
            const ssize_t n = ::read(owners[i]->get(), buffer, sizeof buffer);
            if (n > 0) {
                sink.append(buffer, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            owners[i]->reset();  // EOF or error
            break;
        }
    }
    return Clock::now() < deadline;
}

bool Subprocess::wait_for_output(Stream stream, std::string_view needle,
                                 Clock::time_point deadline) {
    const std::string& sink = stream == Stream::Stdout ? out_ : err_;
    for (;;) {
        if (sink.find(needle) != std::string::npos) return true;
        if (finished()) return false;
        if (!pump(deadline)) return sink.find(needle) != std::string::npos;
    }
}

bool Subprocess::write_stdin(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
        if (!stdin_) return false;
        pollfd fd{stdin_.get(), POLLOUT, 0};
        const int ready = ::poll(&fd, 1, poll_timeout_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) base::throw_errno("poll on the child's stdin");
        if (ready == 0) return false;
        const ssize_t n = ::write(stdin_.get(), data.data(), data.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return false;  // EPIPE: the child closed its stdin
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

RunResult Subprocess::wait(Clock::time_point deadline) {
    while (!finished()) {
        if (!pump(deadline)) {
            if (!exited_) {
                timed_out_ = true;
                kill_and_reap();
            }
            // Collect what is left in the pipes, briefly.
            const auto drain_deadline = Clock::now() + std::chrono::seconds(1);
            while (!finished() && pump(drain_deadline)) {
            }
            break;
        }
    }
    RunResult result;
    result.status = status_;
    result.timed_out = timed_out_;
    result.out = out_;
    result.err = err_;
    const auto end = exited_ ? exit_time_ : Clock::now();
    result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(end - start_);
    return result;
}

RunResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      SpawnOptions options) {
    const auto deadline = Clock::now() + timeout;
    Subprocess process(argv, std::move(options));
    return process.wait(deadline);
}

}  // namespace vmm::test
