// What the command-line tests share: parsing as the `vmm` binary would, the
// shape of a user error (exit 1, one line naming the problem), an option
// parser's refusals, and a private directory for config files.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "vmm/cli/options.hpp"

namespace vmm::cli::testing {

inline ParsedCommand parse(std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), "vmm");
    return parse_command_line(arguments);
}

// An error: exit 1, nothing to run, and exactly one line of text.
inline void expect_error(const ParsedCommand& result, const std::string& mentions) {
    using ::testing::EndsWith;
    using ::testing::HasSubstr;
    using ::testing::StartsWith;
    EXPECT_EQ(result.action, ParsedCommand::Action::Exit);
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_THAT(result.message, StartsWith("vmm: error: "));
    EXPECT_THAT(result.message, EndsWith("\n"));
    EXPECT_EQ(std::count(result.message.begin(), result.message.end(), '\n'), 1)
        << "message is not one line: " << result.message;
    EXPECT_THAT(result.message, HasSubstr(mentions));
}

inline void expect_run(const ParsedCommand& result) {
    EXPECT_EQ(result.action, ParsedCommand::Action::Run) << result.message;
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_TRUE(result.message.empty());
}

// One device option's parser (parse_net, parse_console, ...).
using OptionParser = std::function<void(const std::string&)>;

// What `parse_option` throws for `text`: the error's text, or "(no error)".
inline std::string option_error(const OptionParser& parse_option, const std::string& text) {
    try {
        parse_option(text);
    } catch (const base::Error& error) {
        return error.what();
    }
    return "(no error)";
}

// Each case is {option text, what its error mentions}; every error must also
// name `flag`.
using Refusals = std::vector<std::pair<std::string, std::string>>;

inline void expect_refused(const std::string& flag, const OptionParser& parse_option,
                           const Refusals& cases) {
    using ::testing::HasSubstr;
    for (const auto& [text, mentions] : cases) {
        const std::string error = option_error(parse_option, text);
        EXPECT_THAT(error, HasSubstr(flag)) << text;
        EXPECT_THAT(error, HasSubstr(mentions)) << text;
    }
}

// A private temporary directory, removed with its contents on destruction
// (so also when an assertion ends the test early).
class TempDirectory {
  public:
    TempDirectory() {
        char pattern[] = "/tmp/vmm-cli-test-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) base::throw_errno("mkdtemp {}", pattern);
        path_ = pattern;
    }
    ~TempDirectory() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDirectory(const TempDirectory&) = delete;
    TempDirectory& operator=(const TempDirectory&) = delete;

    const std::filesystem::path& path() const { return path_; }

    // Writes (or rewrites) `name` in the directory; returns its path.
    std::string write(const std::string& name, const std::string& contents) const {
        const auto path = path_ / name;
        std::ofstream(path) << contents;
        return path.string();
    }

  private:
    std::filesystem::path path_;
};

// A test whose config files live in a private directory.
class ConfigFileTest : public ::testing::Test {
  protected:
    std::string write(const std::string& name, const std::string& contents) {
        return directory_.write(name, contents);
    }

    TempDirectory directory_;
};

}  // namespace vmm::cli::testing
