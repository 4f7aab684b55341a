#pragma once
// The TCP rendezvous: how processes that were not started by mpirun (torchrun-style environment,
// srun without MPI) find each other at start-up. Rank 0 listens on MASTER_ADDR:MASTER_PORT, every
// other rank connects (retrying until the timeout, default 60 s: ranks start in any order) and
// says who it is; then rank 0 can broadcast a blob to all (the NCCL unique id) and gather one
// blob from each (the config summaries the start-up check compares). It carries a few kilobytes
// once per run; the training traffic goes over NCCL.
//
// Every failure is an slm::Error that says what to check: no listener after the timeout, a rank
// that never connected, two processes claiming one rank, ranks that disagree on the world size,
// a peer that died mid-exchange.
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/parallel/transport/communicator.hpp"
#include "slm/parallel/transport/launch.hpp"
#include "slm/parallel/transport/socket.hpp"

namespace slm::parallel {

class Rendezvous {
public:
    // MASTER_ADDR / MASTER_PORT, rank and world size from the launcher's environment.
    explicit Rendezvous(const LaunchInfo& info,
                        std::chrono::milliseconds timeout = rendezvous_timeout())
        : Rendezvous(rendezvous_endpoint(info), info.rank, info.world_size, timeout) {}

    Rendezvous(Endpoint master, int rank, int world_size,
               std::chrono::milliseconds timeout = rendezvous_timeout())
        : master_(std::move(master)), rank_(rank), world_(world_size), timeout_(timeout) {
        require(world_size >= 1 && rank >= 0 && rank < world_size,
                "Rendezvous: rank " + std::to_string(rank) + " is not in [0, world size " +
                    std::to_string(world_size) + ")");
        if (world_ == 1) return;
        if (rank_ == 0) accept_all();
        else connect_to_root();
    }

    int rank() const { return rank_; }
    int world_size() const { return world_; }

    // Every rank returns rank 0's blob.
    std::string broadcast_blob(const std::string& blob) {
        const auto deadline = net::Clock::now() + timeout_;
        if (rank_ != 0) return net::recv_blob(peers_[0], deadline, timeout_, root_name());
        for (int r = 1; r < world_; ++r) net::send_blob(peers_[r], blob, deadline, rank_name(r));
        return blob;
    }

    // Rank 0 returns every rank's blob, indexed by rank; the others return an empty vector.
    std::vector<std::string> gather_blobs(const std::string& blob) {
        const auto deadline = net::Clock::now() + timeout_;
        if (rank_ != 0) {
            net::send_blob(peers_[0], blob, deadline, root_name());
            return {};
        }
        std::vector<std::string> all(static_cast<size_t>(world_));
        all[0] = blob;
        for (int r = 1; r < world_; ++r)
            all[static_cast<size_t>(r)] = net::recv_blob(peers_[r], deadline, timeout_, rank_name(r));
        return all;
    }

    // Every rank returns every rank's blob (gathered at rank 0, then broadcast as one message).
    std::vector<std::string> all_gather_blobs(const std::string& blob) {
        std::string packed;
        for (const std::string& b : gather_blobs(blob)) packed += frame(b);
        return unpack(broadcast_blob(packed));
    }

private:
    static constexpr const char* hello_format = "slm-rendezvous/1 rank=%d world=%d";

    std::string where() const { return master_.host + ":" + std::to_string(master_.port); }
    std::string root_name() const { return "rank 0 at " + where(); }
    static std::string rank_name(int r) { return "rank " + std::to_string(r); }
    std::string limit_hint() const {
        return " (SLM_RENDEZVOUS_TIMEOUT_S sets the limit, now " + net::seconds_text(timeout_) + ")";
    }

    // ---- rank 0 ------------------------------------------------------------------------------
    // Binds the MASTER_ADDR address itself when it is a loopback one (one-node runs and tests
    // stay on 127.0.0.1); otherwise the wildcard address of its family, because a host name
    // often resolves differently on the host itself (Debian maps it to 127.0.1.1) than on the
    // other nodes.
    net::Socket listen_on_master() const {
        net::Addresses addresses(master_.host, master_.port);
        int last_error = 0;
        for (const addrinfo* a = addresses.begin(); a; a = a->ai_next) {
            net::Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
            if (!s.open()) {
                last_error = errno;
                continue;
            }
            const int one = 1;
            ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_storage bind_to{};
            std::memcpy(&bind_to, a->ai_addr, a->ai_addrlen);
            if (!net::is_loopback(a)) {
                if (a->ai_family == AF_INET)
                    reinterpret_cast<sockaddr_in*>(&bind_to)->sin_addr.s_addr = htonl(INADDR_ANY);
                else
                    reinterpret_cast<sockaddr_in6*>(&bind_to)->sin6_addr = in6addr_any;
            }
            if (::bind(s.fd(), reinterpret_cast<sockaddr*>(&bind_to), a->ai_addrlen) != 0 ||
                ::listen(s.fd(), 128) != 0) {
                last_error = errno;
                continue;
            }
            net::set_nonblocking(s.fd());
            return s;
        }
        if (last_error == EADDRINUSE)
            fail("rank 0 cannot listen on " + where() +
                 ": the port is in use (another job, or a run still shutting down, holds "
                 "port " + std::to_string(master_.port) +
                 "): choose another MASTER_PORT (or SLM_RENDEZVOUS_PORT), the same on every "
                 "rank");
        fail("rank 0 cannot listen on " + where() + ": " + net::errno_text(last_error) +
             " (rank 0 must run on the host MASTER_ADDR names)");
    }

    void accept_all() {
        net::Socket listener = listen_on_master();
        peers_.resize(static_cast<size_t>(world_));
        const auto start = net::Clock::now(), deadline = start + timeout_;
        for (int connected = 0; connected < world_ - 1;) {
            if (!net::wait_ready(listener.fd(), POLLIN, deadline)) fail(missing_ranks());
            net::Socket c(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (!c.open()) {
                if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
                fail("rank 0: accept on " + where() + " failed: " + net::errno_text(errno));
            }
            const int r = admit(c, deadline);
            peers_[static_cast<size_t>(r)] = std::move(c);
            ++connected;
        }
    }

    // Reads a connecting rank's hello and answers "" (welcome) or the reason it is refused; a
    // refusal ends rank 0 too, with the same message, since the job cannot start.
    int admit(const net::Socket& c, net::Clock::time_point deadline) {
        const std::string hello = net::recv_blob(c, deadline, timeout_, "a connecting rank");
        int r = -1, w = -1;
        std::string problem;
        if (std::sscanf(hello.c_str(), hello_format, &r, &w) != 2)
            problem = "a connection to " + where() +
                      " did not come from an slm rank (another program on MASTER_PORT?)";
        else if (w != world_)
            problem = "rank " + std::to_string(r) + " has world size " + std::to_string(w) +
                      " but rank 0 has " + std::to_string(world_) +
                      ": start every rank with the same WORLD_SIZE";
        else if (r <= 0 || r >= world_)
            problem = "a process claims rank " + std::to_string(r) + " of " +
                      std::to_string(world_) + ": ranks other than 0 run from 1 to " +
                      std::to_string(world_ - 1);
        else if (peers_[static_cast<size_t>(r)].open())
            problem = "two processes claim rank " + std::to_string(r) +
                      ": give every process a distinct RANK";
        net::send_blob(c, problem, deadline, "a connecting rank");
        if (!problem.empty()) fail("rendezvous refused: " + problem);
        return r;
    }

    std::string missing_ranks() const {
        std::string missing;
        for (int r = 1; r < world_; ++r)
            if (!peers_[static_cast<size_t>(r)].open())
                missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        return "rank 0 waited " + net::seconds_text(timeout_) + " at " + where() +
               " but rank(s) " + missing + " of " + std::to_string(world_) +
               " never connected: were all ranks started, with the same MASTER_ADDR and "
               "MASTER_PORT?" + limit_hint();
    }

    // ---- the other ranks ---------------------------------------------------------------------
    void connect_to_root() {
        const auto start = net::Clock::now(), deadline = start + timeout_;
        net::Addresses addresses(master_.host, master_.port);
        int last_error = 0;
        net::Socket s;
        while (!s.open()) {
            for (const addrinfo* a = addresses.begin(); a && !s.open(); a = a->ai_next)
                s = try_connect(a, deadline, last_error);
            if (s.open()) break;
            if (net::Clock::now() >= deadline)
                fail("no listener at " + where() + " after " + net::seconds_text(timeout_) +
                     ": is rank 0 running and MASTER_ADDR/MASTER_PORT the same on every rank? "
                     "(last attempt: " + net::errno_text(last_error) + ")" + limit_hint());
            // Rank 0 may simply not be up yet: try again shortly.
            std::this_thread::sleep_for(
                std::min<net::Clock::duration>(std::chrono::milliseconds(100), deadline - net::Clock::now()));
        }
        char hello[64];
        std::snprintf(hello, sizeof hello, hello_format, rank_, world_);
        net::send_blob(s, hello, deadline, root_name());
        const std::string refusal = net::recv_blob(s, deadline, timeout_, root_name());
        if (!refusal.empty()) fail("rank 0 refused rank " + std::to_string(rank_) + ": " + refusal);
        peers_.resize(1);
        peers_[0] = std::move(s);
    }

    // One non-blocking connect; an unopened socket (and last_error set) when it fails.
    static net::Socket try_connect(const addrinfo* a, net::Clock::time_point deadline,
                                   int& last_error) {
        net::Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                               a->ai_protocol));
        if (!s.open()) {
            last_error = errno;
            return s;
        }
        if (::connect(s.fd(), a->ai_addr, a->ai_addrlen) == 0) return s;
        if (errno != EINPROGRESS) {
            last_error = errno;
            return {};
        }
        if (!net::wait_ready(s.fd(), POLLOUT, deadline)) {
            last_error = ETIMEDOUT;
            return {};
        }
        int error = 0;
        socklen_t length = sizeof error;
        ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0) {
            last_error = error;
            return {};
        }
        return s;
    }

    // ---- packing several blobs into one message -------------------------------------------
    static std::string frame(const std::string& b) {
        std::string out(8, '\0');
        for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(b.size() >> (8 * i));
        return out + b;
    }
    std::vector<std::string> unpack(const std::string& packed) const {
        std::vector<std::string> out;
        for (size_t at = 0; at < packed.size();) {
            require(at + 8 <= packed.size(), "rendezvous: a truncated message from rank 0");
            uint64_t size = 0;
            for (int i = 0; i < 8; ++i)
                size |= uint64_t{static_cast<unsigned char>(packed[at + static_cast<size_t>(i)])} << (8 * i);
            at += 8;
            require(size <= packed.size() - at, "rendezvous: a truncated message from rank 0");
            out.push_back(packed.substr(at, size));
            at += size;
        }
        require(static_cast<int>(out.size()) == world_,
                "rendezvous: rank 0 sent " + std::to_string(out.size()) + " blobs for " +
                    std::to_string(world_) + " ranks");
        return out;
    }

    Endpoint master_;
    int rank_ = 0, world_ = 1;
    std::chrono::milliseconds timeout_;
    // Rank 0: one connection per rank (index 0 unused); the others: [0] is rank 0.
    std::vector<net::Socket> peers_;
};

static_assert(BlobExchange<Rendezvous>);

}  // namespace slm::parallel
