// Logging to stderr through fmt. One global level, set once from the CLI
// before any thread starts; reads are relaxed atomics so vCPU threads can log.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <string_view>

namespace vmm::log {

enum class Level { Trace = 0, Debug, Info, Warn, Error, Off };

inline std::atomic<Level>& threshold() {
    static std::atomic<Level> level{Level::Info};
    return level;
}

inline void set_level(Level level) {
    threshold().store(level, std::memory_order_relaxed);
}

inline bool enabled(Level level) {
    return level >= threshold().load(std::memory_order_relaxed);
}

std::optional<Level> parse_level(std::string_view name);
void write_line(Level level, std::string_view message);

template <typename... Args>
void message(Level level, fmt::format_string<Args...> format, Args&&... args) {
    if (!enabled(level)) return;
    write_line(level, fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void trace(fmt::format_string<Args...> f, Args&&... a) {
    message(Level::Trace, f, std::forward<Args>(a)...);
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
    message(Level::Debug, f, std::forward<Args>(a)...);
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
    message(Level::Info, f, std::forward<Args>(a)...);
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) {
    message(Level::Warn, f, std::forward<Args>(a)...);
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) {
    message(Level::Error, f, std::forward<Args>(a)...);
}

// Why `vmm` exits non-zero (a host error, a guest failure's register dump):
// printed at any level, `off` included, or the user would get a bare exit code.
template <typename... Args>
void fatal(fmt::format_string<Args...> f, Args&&... a) {
    write_line(Level::Error, fmt::format(f, std::forward<Args>(a)...));
}

}  // namespace vmm::log
