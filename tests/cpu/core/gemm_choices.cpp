// include/slm/cuda/gemm_choices.hpp, the file of GEMM algorithm picks a tuned run keeps: what is
// written reads back equal, a later pick of a shape replaces an earlier one, and every kind of
// damage is an error naming the file, the line and the fix.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"
#include "slm/cuda/gemm_choices.hpp"

using slm::cuda::GemmChoice;
using slm::cuda::GemmChoices;
using slm::test::contains;
using slm::test::error_of;

namespace {

GemmChoices two_picks() {
    GemmChoices c{"NVIDIA H200 | sm_90 | cublasLt 130100", {}};
    GemmChoice a;
    a.shape = {0, 1, 4096, 768, 2048, 2048, 2048, 768, 14, 1, 0, 0, 0, 256, 256, 256};
    a.requested = 8;
    a.algorithm = {0x1, 0xffffffffffffffffull, 0x0123456789abcdefull, 0, 0, 7, 0x8000000000000000ull, 42};
    GemmChoice b = a;
    b.shape[2] = 32768;
    b.shape[8] = 0;
    b.requested = 4;
    b.algorithm[0] = 0xdeadbeef;
    c.picks = {a, b};
    return c;
}

std::string parse_error(const std::string& text) {
    return error_of([&] { slm::cuda::parse_gemm_choices(text, "picks.txt"); });
}

}  // namespace

TEST_CASE("GEMM choices: format and parse round-trip, through a file as well") {
    const GemmChoices c = two_picks();
    const std::string text = slm::cuda::format_gemm_choices(c);
    CHECK(text.rfind("slm-gemm-choices 1\nidentity NVIDIA H200 | sm_90 | cublasLt 130100\npick 0 1 4096 ", 0) == 0);
    CHECK(slm::cuda::parse_gemm_choices(text, "x") == c);

    slm::test::TempDir dir("gemm-choices");
    const auto path = dir.path / "sub" / "gemm_choices.txt";  // the directory is made
    slm::cuda::write_gemm_choices(path, c);
    CHECK(slm::cuda::read_gemm_choices(path) == c);
    CHECK(std::distance(std::filesystem::directory_iterator(path.parent_path()),
                        std::filesystem::directory_iterator()) == 1);  // no temp file left
}

TEST_CASE("GEMM choices: a later pick of the same shape replaces the earlier one, in its place") {
    GemmChoices c = two_picks();
    GemmChoice again = c.picks[0];
    again.algorithm[7] = 99;
    c.picks.push_back(again);
    const GemmChoices read = slm::cuda::parse_gemm_choices(slm::cuda::format_gemm_choices(c), "x");
    REQUIRE(read.picks.size() == 2);
    CHECK(read.picks[0] == again);
    CHECK(read.picks[1] == c.picks[1]);
}

TEST_CASE("GEMM choices: damaged files are errors naming the file, the line and the fix") {
    const std::string good = slm::cuda::format_gemm_choices(two_picks());
    const std::string head = "slm-gemm-choices 1\nidentity G\n";
    const std::string pick = "pick 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 8";
    const std::string words = " 0000000000000001 0000000000000002 0000000000000003 0000000000000004"
                              " 0000000000000005 0000000000000006 0000000000000007 0000000000000008";
    CHECK(slm::cuda::parse_gemm_choices(head + pick + words + "\n", "x").picks.size() == 1);

    const std::string empty = parse_error("");
    CHECK(contains(empty, "'picks.txt', line 1: the file is empty"));
    CHECK(contains(empty, "delete it to time the GEMMs again"));
    CHECK(contains(parse_error("slm-gemm-choices 2\n"), "line 1: expected 'slm-gemm-choices 1'"));
    CHECK(contains(parse_error("slm-gemm-choices 1\n"), "no identity line"));
    CHECK(contains(parse_error("slm-gemm-choices 1\n" + pick + words), "line 2: a pick before the identity line"));
    CHECK(contains(parse_error(head + "identity H\n"), "line 3: a second identity line"));
    CHECK(contains(parse_error(head + "pik 1\n"), "line 3: expected 'identity' or 'pick', found 'pik'"));
    CHECK(contains(parse_error(head + "pick 0 1 2\n"), "line 3: a pick needs 16 shape fields"));
    CHECK(contains(parse_error(head + "pick 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 0" + words),
                   "a candidate count >= 1"));
    CHECK(contains(parse_error(head + pick + " 12\n"), "8 algorithm words of 16 hex digits"));
    CHECK(contains(parse_error(head + pick + words.substr(0, 17 * 7) + " 000000000000000G\n"),
                   "8 algorithm words of 16 hex digits"));
    CHECK(contains(parse_error(head + pick + words + " more\n"), "unexpected 'more' after the algorithm"));
    CHECK(contains(parse_error(good + "pick x\n"), "line 5: a pick needs 16 shape fields"));

    slm::test::TempDir dir("gemm-choices-missing");
    CHECK(contains(error_of([&] { slm::cuda::read_gemm_choices(dir.path / "none.txt"); }),
                   "cannot read GEMM choices file"));
}
