// parallel::Rendezvous over 127.0.0.1 with ranks as threads of this process: blobs go both ways
// in any start order, and every failure (nobody listening, a rank that never comes, a world-size
// or rank clash, a peer that leaves) ends within the timeout with a message that says what to
// check.
#include "slm/parallel/transport/rendezvous.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/error_text.hpp"
#include "cpu/parallel/free_port.hpp"

namespace {

using namespace std::chrono_literals;
using slm::parallel::Endpoint;
using slm::parallel::Rendezvous;
using slm::test::contains;
using slm::test::error_of;

// Runs body(i) on n threads; returns each thread's slm::Error message ("" when none).
std::vector<std::string> run_threads(int n, const std::function<void(int)>& body) {
    std::vector<std::string> errors(static_cast<size_t>(n));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
        threads.emplace_back([&, i] { errors[static_cast<size_t>(i)] = error_of([&] { body(i); }); });
    for (auto& t : threads) t.join();
    return errors;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("rendezvous: three ranks broadcast, gather and all-gather blobs") {
    const Endpoint master{"127.0.0.1", slm::test::free_local_port()};
    std::vector<std::string> got_broadcast(3), got_gather_size(3);
    std::vector<std::vector<std::string>> got_all(3);
    std::string gathered_at_root;
    const auto errors = run_threads(3, [&](int rank) {
        // The others start first and must keep retrying until rank 0 listens.
        if (rank == 0) std::this_thread::sleep_for(300ms);
        Rendezvous rv(master, rank, 3, 10s);
        CHECK(rv.rank() == rank);
        CHECK(rv.world_size() == 3);
        // Binary bytes, including zeros, survive.
        const std::string id = std::string("unique\0id", 9) + std::string(128, '\x7f');
        got_broadcast[static_cast<size_t>(rank)] = rv.broadcast_blob(rank == 0 ? id : "ignored");
        const auto gathered = rv.gather_blobs("from rank " + std::to_string(rank));
        if (rank == 0)
            for (const auto& g : gathered) gathered_at_root += g + ";";
        else
            CHECK(gathered.empty());
        got_all[static_cast<size_t>(rank)] = rv.all_gather_blobs(std::string(size_t(rank) * 1000, 'a' + char(rank)));
    });
    for (const auto& e : errors) CHECK(e == "");
    for (const auto& b : got_broadcast) CHECK(b == std::string("unique\0id", 9) + std::string(128, '\x7f'));
    CHECK(gathered_at_root == "from rank 0;from rank 1;from rank 2;");
    for (const auto& all : got_all) {
        REQUIRE(all.size() == 3);
        CHECK(all[0].empty());
        CHECK(all[1] == std::string(1000, 'b'));
        CHECK(all[2] == std::string(2000, 'c'));
    }
}

TEST_CASE("rendezvous: one rank needs no network") {
    Rendezvous rv(Endpoint{"127.0.0.1", 1}, 0, 1, 1s);
    CHECK(rv.broadcast_blob("x") == "x");
    CHECK(rv.all_gather_blobs("y") == std::vector<std::string>{"y"});
}

TEST_CASE("rendezvous: no listener ends within the timeout and says what to check") {
    const int port = slm::test::free_local_port();  // closed: nothing listens there
    const auto start = std::chrono::steady_clock::now();
    const std::string e = error_of([&] { Rendezvous rv(Endpoint{"127.0.0.1", port}, 1, 2, 2s); });
    const double took = seconds_since(start);
    CHECK(contains(e, "no listener at 127.0.0.1:" + std::to_string(port) +
                          " after 2 s: is rank 0 running and MASTER_ADDR/MASTER_PORT the same on "
                          "every rank?"));
    CHECK(took >= 1.9);
    CHECK(took < 4.0);
}

TEST_CASE("rendezvous: rank 0 names the ranks that never connected") {
    const int port = slm::test::free_local_port();
    const auto start = std::chrono::steady_clock::now();
    const std::string e = error_of([&] { Rendezvous rv(Endpoint{"127.0.0.1", port}, 0, 3, 1s); });
    CHECK(contains(e, "rank 0 waited 1 s at 127.0.0.1:" + std::to_string(port) +
                          " but rank(s) 1, 2 of 3 never connected"));
    CHECK(seconds_since(start) < 3.0);
}

TEST_CASE("rendezvous: ranks that disagree on the world size are refused, on both sides") {
    const Endpoint master{"127.0.0.1", slm::test::free_local_port()};
    const auto errors = run_threads(2, [&](int rank) {
        if (rank == 1) std::this_thread::sleep_for(100ms);
        Rendezvous rv(master, rank, rank == 0 ? 2 : 3, 5s);
    });
    CHECK(contains(errors[0], "rank 1 has world size 3 but rank 0 has 2"));
    CHECK(contains(errors[1], "rank 0 refused rank 1"));
    CHECK(contains(errors[1], "rank 1 has world size 3 but rank 0 has 2"));
}

TEST_CASE("rendezvous: two processes claiming one rank are refused") {
    const Endpoint master{"127.0.0.1", slm::test::free_local_port()};
    const auto errors = run_threads(3, [&](int i) {
        if (i == 2) std::this_thread::sleep_for(300ms);  // the second claimant comes later
        Rendezvous rv(master, i == 0 ? 0 : 1, 3, 5s);
    });
    CHECK(contains(errors[0], "two processes claim rank 1"));
    CHECK(contains(errors[2], "two processes claim rank 1"));
}

TEST_CASE("rendezvous: a peer that leaves mid-exchange is named") {
    const Endpoint master{"127.0.0.1", slm::test::free_local_port()};
    const auto errors = run_threads(2, [&](int rank) {
        Rendezvous rv(master, rank, 2, 5s);
        if (rank == 0) rv.gather_blobs("root");
        // rank 1 returns at once: its connection closes without sending anything.
    });
    CHECK(contains(errors[0], "rank 1 closed the rendezvous connection"));
    CHECK(errors[1] == "");
}

TEST_CASE("rendezvous: a port in use is reported as such") {
    const int port = slm::test::free_local_port();
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    const std::string e = error_of([&] { Rendezvous rv(Endpoint{"127.0.0.1", port}, 0, 2, 1s); });
    ::close(fd);
    CHECK(contains(e, "rank 0 cannot listen on 127.0.0.1:" + std::to_string(port)));
    CHECK(contains(e, "choose another MASTER_PORT"));
}
