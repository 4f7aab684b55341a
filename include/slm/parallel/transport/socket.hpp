#pragma once
// Blocking-with-a-deadline TCP on POSIX sockets, for the start-up rendezvous (rendezvous.hpp).
// Every wait is bounded by a deadline, so a peer that never shows up or dies mid-message becomes
// an slm::Error saying which peer and how long we waited, never a hang. Messages are framed as
// an 8-byte little-endian length followed by the bytes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "slm/core/error.hpp"

namespace slm::parallel::net {

using Clock = std::chrono::steady_clock;

// "2 s", "0.5 s": how long we waited, for messages.
inline std::string seconds_text(Clock::duration d) {
    char text[32];
    std::snprintf(text, sizeof text, "%g s",
                  std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0);
    return text;
}

inline std::string errno_text(int e) { return std::strerror(e); }

// Milliseconds left until the deadline, for poll(); 0 once it has passed.
inline int millis_left(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

// An owned file descriptor, closed at scope exit.
class Socket {
public:
    Socket() = default;
    explicit Socket(int fd) : fd_(fd) {}
    ~Socket() { close(); }
    Socket(Socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Socket& operator=(Socket&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    int fd() const { return fd_; }
    bool open() const { return fd_ >= 0; }
    void close() {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    }

private:
    int fd_ = -1;
};

// Resolved addresses of host:port (IPv4 and IPv6), freed at scope exit.
class Addresses {
public:
    Addresses(const std::string& host, int port) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list_);
        if (rc != 0)
            fail("cannot resolve MASTER_ADDR '" + host + "': " + ::gai_strerror(rc) +
                 " (set MASTER_ADDR to rank 0's host name or IP address)");
    }
    ~Addresses() {
        if (list_) ::freeaddrinfo(list_);
    }
    Addresses(const Addresses&) = delete;
    Addresses& operator=(const Addresses&) = delete;
    const addrinfo* begin() const { return list_; }

private:
    addrinfo* list_ = nullptr;
};

inline bool is_loopback(const addrinfo* a) {
    if (a->ai_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr.s_addr) >> 24) ==
               127;
    if (a->ai_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr);
    return false;
}

inline void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Waits until fd is ready for `events`; false when the deadline passed first.
inline bool wait_ready(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        const int rc = ::poll(&p, 1, millis_left(deadline));
        if (rc > 0) return true;
        if (rc == 0) return false;
        if (errno != EINTR) fail("poll failed: " + errno_text(errno));
    }
}

// `peer` names the other side in messages ("rank 0 at 127.0.0.1:29500", "rank 2").
inline void send_all(const Socket& s, const void* data, size_t bytes, Clock::time_point deadline,
                     const std::string& peer) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
        const ssize_t n = ::send(s.fd(), p, bytes, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            bytes -= static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_ready(s.fd(), POLLOUT, deadline))
                fail("sending to " + peer + " timed out: it stopped reading (is it stuck?)");
            continue;
        }
        fail("lost the connection to " + peer + " while sending (" + errno_text(errno) +
             "): did it exit? see its output");
    }
}

inline void recv_all(const Socket& s, void* data, size_t bytes, Clock::time_point deadline,
                     Clock::duration timeout, const std::string& peer) {
    char* p = static_cast<char*>(data);
    while (bytes > 0) {
        const ssize_t n = ::recv(s.fd(), p, bytes, 0);
        if (n > 0) {
            p += n;
            bytes -= static_cast<size_t>(n);
            continue;
        }
        if (n == 0)
            fail(peer + " closed the rendezvous connection: it exited or failed (see its output)");
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_ready(s.fd(), POLLIN, deadline))
                fail("waited " + seconds_text(timeout) + " for " + peer +
                     " to send its part of the rendezvous: is it stuck or still starting? "
                     "(SLM_RENDEZVOUS_TIMEOUT_S sets this limit)");
            continue;
        }
        fail("lost the connection to " + peer + " while receiving (" + errno_text(errno) +
             "): did it exit? see its output");
    }
}

// Bigger than any start-up blob: a corrupt length is an error, not a huge allocation.
inline constexpr uint64_t max_blob_bytes = uint64_t{64} << 20;

inline void send_blob(const Socket& s, const std::string& blob, Clock::time_point deadline,
                      const std::string& peer) {
    unsigned char header[8];
    for (int i = 0; i < 8; ++i) header[i] = static_cast<unsigned char>(blob.size() >> (8 * i));
    send_all(s, header, sizeof header, deadline, peer);
    send_all(s, blob.data(), blob.size(), deadline, peer);
}

inline std::string recv_blob(const Socket& s, Clock::time_point deadline, Clock::duration timeout,
                             const std::string& peer) {
    unsigned char header[8];
    recv_all(s, header, sizeof header, deadline, timeout, peer);
    uint64_t size = 0;
    for (int i = 0; i < 8; ++i) size |= uint64_t{header[i]} << (8 * i);
    if (size > max_blob_bytes)
        fail(peer + " sent a " + std::to_string(size) +
             "-byte message: not an slm rank (another program on MASTER_PORT?)");
    std::string blob(size, '\0');
    recv_all(s, blob.data(), blob.size(), deadline, timeout, peer);
    return blob;
}

}  // namespace slm::parallel::net
