#pragma once
// A TCP port on 127.0.0.1 that nothing listens on right now, for rendezvous tests: the kernel
// picks it (bind to port 0), and it is released before use. Another process could take it in
// between; tests that need "nothing listens here" use it at once.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace slm::test {

inline int free_local_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t length = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("free_local_port: cannot bind a socket on 127.0.0.1");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

}  // namespace slm::test
