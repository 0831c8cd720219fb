// Bounded reads (scenarios/text_input.hpp): lines and whole files, checked against what std::getline and a
// plain read give on the same bytes, and the bound applied exactly at its value.
#include "scenarios/text_input.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace moesim {
namespace {

std::vector<std::string> lines_of(const std::string& bytes, std::size_t max, bool* too_long) {
  std::istringstream in(bytes);
  std::vector<std::string> out;
  std::string line;
  *too_long = false;
  for (;;) {
    const LineRead r = read_line(in, line, max);
    if (r == LineRead::kEnd) break;
    if (r == LineRead::kTooLong) {
      *too_long = true;
      break;
    }
    out.push_back(line);
  }
  return out;
}

TEST(ReadLine, SplitsAsGetlineDoes) {
  const std::vector<std::string> cases = {"",        "a",    "a\n",      "a\nbc",
                                          "a\nbc\n", "\n\n", "x\r\ny\n", std::string("n\0l\n", 4)};
  for (const std::string& bytes : cases) {
    std::istringstream ref(bytes);
    std::vector<std::string> want;
    std::string line;
    while (std::getline(ref, line)) want.push_back(line);
    bool too_long = false;
    EXPECT_EQ(lines_of(bytes, 100, &too_long), want) << bytes;
    EXPECT_FALSE(too_long);
  }
}

TEST(ReadLine, EofFlagTellsAnUnterminatedLastLine) {
  std::istringstream a("one\ntwo");
  std::string line;
  ASSERT_EQ(read_line(a, line), LineRead::kLine);
  EXPECT_FALSE(a.eof());
  ASSERT_EQ(read_line(a, line), LineRead::kLine);
  EXPECT_EQ(line, "two");
  EXPECT_TRUE(a.eof());
  EXPECT_EQ(read_line(a, line), LineRead::kEnd);
}

TEST(ReadLine, BoundIsTheLongestLineAccepted) {
  bool too_long = false;
  EXPECT_EQ(lines_of("abcd\nef\n", 4, &too_long), (std::vector<std::string>{"abcd", "ef"}));
  EXPECT_FALSE(too_long);
  EXPECT_EQ(lines_of("ab\nabcde\n", 4, &too_long), (std::vector<std::string>{"ab"}));
  EXPECT_TRUE(too_long);
}

TEST(ReadTextFile, WholeFileUpToTheBound) {
  const auto dir = std::filesystem::temp_directory_path() / "moesim-text-input-test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "f.txt").string();
  std::ofstream(path, std::ios::binary) << std::string(1000, 'x');
  TextFile f = read_text_file(path, 1000);
  EXPECT_EQ(f.status, TextRead::kOk);
  EXPECT_EQ(f.text.size(), 1000u);
  f = read_text_file(path, 999);
  EXPECT_EQ(f.status, TextRead::kTooLarge);
  EXPECT_EQ(describe_failed_read(f, 999), "more than 999 bytes (the largest input read)");
  EXPECT_TRUE(f.text.empty());
  EXPECT_EQ(read_text_file(dir.string()).status, TextRead::kDirectory);
  f = read_text_file((dir / "missing").string());
  EXPECT_EQ(f.status, TextRead::kCannotOpen);
  EXPECT_EQ(describe_failed_read(f), "none (No such file or directory)");
  std::filesystem::remove_all(dir);
}

TEST(DescribeBytes, PowersOfTwo) {
  EXPECT_EQ(describe_bytes(kMaxDocumentBytes), "256 MiB");
  EXPECT_EQ(describe_bytes(2048), "2 KiB");
  EXPECT_EQ(describe_bytes(1000), "1000 bytes");
}

}  // namespace
}  // namespace moesim
