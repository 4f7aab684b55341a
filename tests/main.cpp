// The test programs' main: doctest's, with one rule added: a run whose filters select no test
// case fails. ctest runs each case alone as --test-case=<its name>, and a name that does not
// survive CMake's lists (a ';' cuts it in two) would otherwise select nothing and pass.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {

bool run_ended = false;
unsigned selected = 0;

// Hears how many test cases passed the filters; reports nothing itself.
struct CountSelected : doctest::IReporter {
    explicit CountSelected(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats& stats) override {
        run_ended = true;
        selected = stats.numTestCasesPassingFilters;
    }
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("count_selected", 1, CountSelected);

}  // namespace

int main(int argc, char** argv) {
    doctest::Context context(argc, argv);
    const int status = context.run();
    if (context.shouldExit()) return status;  // --help, --list-test-cases and the like
    if (run_ended && selected == 0) {
        std::fprintf(stderr,
                     "error: no test case matches the filters given (a test case's name with a ';' "
                     "is cut there by ctest: rename it)\n");
        return 1;
    }
    return status;
}
