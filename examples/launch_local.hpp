#pragma once
// --nproc N: a program starts its own N ranks on this machine, so one node needs no launcher.
//   GPU ranks (run_local_ranks): N copies of the program, forked and exec'd with the
//     torchrun-style environment RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and
//     MASTER_PORT = a free port (slm::parallel::from_environment reads it; the TCP rendezvous
//     listens there). The parent waits for all of them; when one fails it stops the others
//     (SIGTERM, then SIGKILL after a grace period) and returns that rank's exit status (1 when a
//     signal ended it), naming the rank.
//   CPU ranks talk over MPI, which needs mpirun to start them (exec_under_mpirun): the program
//     replaces itself with `mpirun -np N --oversubscribe ... PROGRAM ARGS` (OpenMPI's flags).
// The ranks get the program's arguments without --nproc (arguments_without).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "slm/core/error.hpp"

extern char** environ;

namespace slm::cli {

// argv[1..] without `flag` and its value.
inline std::vector<std::string> arguments_without(int argc, char** argv, std::string_view flag) {
    std::vector<std::string> out;
    for (int i = 1; i < argc; ++i) {
        if (argv[i] == flag) {
            ++i;  // its value
            continue;
        }
        out.emplace_back(argv[i]);
    }
    return out;
}

// This program's own file, so the ranks run the same build even when argv[0] is a bare name.
inline std::string this_program(const char* argv0) {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(argv0) : self.string();
}

// The full path of `name` on PATH, or "" when there is none.
inline std::string find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    if (!path) return "";
    const std::string dirs = path;
    for (size_t at = 0; at <= dirs.size();) {
        const size_t end = std::min(dirs.find(':', at), dirs.size());
        const std::string dir = end > at ? dirs.substr(at, end - at) : ".";
        const std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        at = end + 1;
    }
    return "";
}

// A TCP port on 127.0.0.1 that nothing listens on now (the kernel picks it). Another process
// could take it before rank 0 binds it; rank 0 then fails to listen and says so.
inline int free_tcp_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    require(fd >= 0, std::string("--nproc: cannot open a socket to find a free port: ") +
                         std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    const int error = errno;
    ::close(fd);
    require(ok, std::string("--nproc: cannot find a free TCP port on 127.0.0.1: ") +
                    std::strerror(error));
    return ntohs(address.sin_port);
}

namespace launch_local_detail {

// The variables of a launcher this process may have inherited (an sbatch step, say): a rank
// must see only the ones run_local_ranks gives it.
inline constexpr const char* launcher_variables[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
    "TORCHELASTIC_USE_AGENT_STORE", "SLM_RENDEZVOUS_PORT"};

// This process's environment without the launcher variables, plus `extra` ("NAME=value").
inline std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
    std::vector<std::string> out;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('='));
        bool drop = false;
        for (const char* v : launcher_variables) drop = drop || name == v;
        if (!drop) out.push_back(entry);
    }
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
}

// Pointers into `strings`, ending with nullptr, as execve wants them.
inline std::vector<char*> c_array(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

inline volatile sig_atomic_t forwarded_signal = 0;
inline void remember_signal(int signal) { forwarded_signal = signal; }

inline std::string describe(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
    return "ended with wait status " + std::to_string(status);
}

}  // namespace launch_local_detail

// Starts `ranks` copies of `program args` with the torchrun-style environment (see the top),
// waits for all of them and returns 0 when all exit 0. When one fails, the others get SIGTERM
// (SIGKILL after grace_s seconds), and it prints which rank failed how and returns that rank's
// exit status (1 when it was killed by a signal).
// SIGINT, SIGTERM and SIGHUP sent to this process are passed on to the ranks.
inline int run_local_ranks(const std::string& program, const std::vector<std::string>& args,
                           int ranks, const char* who, int grace_s = 10) {
    using namespace launch_local_detail;
    require(ranks >= 1, "--nproc must be >= 1");
    const int port = free_tcp_port();
    // Everything execve needs is built before fork: the child only calls execve and _exit.
    std::vector<std::vector<std::string>> environments, arguments;
    for (int r = 0; r < ranks; ++r) {
        environments.push_back(environment_with(
            {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(ranks),
             "LOCAL_RANK=" + std::to_string(r), "LOCAL_WORLD_SIZE=" + std::to_string(ranks),
             "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)}));
        arguments.push_back({program});
        arguments.back().insert(arguments.back().end(), args.begin(), args.end());
    }
    std::fprintf(stderr, "%s: starting %d ranks on this machine (MASTER_ADDR=127.0.0.1 MASTER_PORT=%d)\n",
                 who, ranks, port);
    std::fflush(stderr);

    // SIGINT, SIGTERM and SIGHUP are remembered (and passed on) while the ranks run; the
    // caller's own handling comes back when this returns.
    struct HandlersWhileRanksRun {
        const int signals[3] = {SIGINT, SIGTERM, SIGHUP};
        struct sigaction previous[3] {};
        HandlersWhileRanksRun() {
            forwarded_signal = 0;
            struct sigaction action {};
            action.sa_handler = remember_signal;
            sigemptyset(&action.sa_mask);
            for (int i = 0; i < 3; ++i) ::sigaction(signals[i], &action, &previous[i]);
        }
        ~HandlersWhileRanksRun() {
            for (int i = 0; i < 3; ++i) ::sigaction(signals[i], &previous[i], nullptr);
        }
    } handlers;

    std::vector<pid_t> pids(static_cast<size_t>(ranks), -1);
    std::vector<bool> running(static_cast<size_t>(ranks), false);
    auto signal_all = [&](int s) {
        for (int r = 0; r < ranks; ++r)
            if (running[r]) ::kill(pids[r], s);
    };
    int failed_rank = -1, failed_status = 0;
    std::string failure;
    using clock = std::chrono::steady_clock;
    auto kill_at = clock::time_point::max();  // when ranks still running after SIGTERM get SIGKILL
    bool killed = false;
    int passed_on = 0;
    // A SIGTERM sent to a rank between its fork and its execve would reach remember_signal (the
    // child's copy of our handler) and be lost, leaving the rank to run until SIGKILL. So the
    // three signals stay blocked across fork; the child puts back the default actions and the
    // caller's mask before execve, and a signal that came meanwhile then ends it as it should.
    sigset_t forwarded, caller_mask;
    sigemptyset(&forwarded);
    for (const int s : handlers.signals) sigaddset(&forwarded, s);
    for (int r = 0; r < ranks; ++r) {
        auto argv = c_array(arguments[r]);
        auto envp = c_array(environments[r]);
        ::sigprocmask(SIG_BLOCK, &forwarded, &caller_mask);
        const pid_t pid = ::fork();
        if (pid == 0) {
            for (const int s : handlers.signals) ::signal(s, SIG_DFL);
            ::sigprocmask(SIG_SETMASK, &caller_mask, nullptr);
            ::execve(argv[0], argv.data(), envp.data());
            const char message[] = "--nproc: execve of this program failed\n";
            [[maybe_unused]] const auto n = ::write(2, message, sizeof message - 1);
            ::_exit(127);
        }
        ::sigprocmask(SIG_SETMASK, &caller_mask, nullptr);
        if (pid < 0) {
            failure = std::string("cannot start rank ") + std::to_string(r) + ": fork failed: " +
                      std::strerror(errno);
            break;
        }
        pids[r] = pid;
        running[r] = true;
    }
    if (!failure.empty()) {
        signal_all(SIGTERM);
        kill_at = clock::now() + std::chrono::seconds(grace_s);
    }

    while (std::count(running.begin(), running.end(), true) > 0) {
        if (forwarded_signal != 0 && forwarded_signal != passed_on) {
            passed_on = forwarded_signal;
            signal_all(passed_on);
            kill_at = std::min(kill_at, clock::now() + std::chrono::seconds(grace_s));
        }
        if (!killed && clock::now() >= kill_at) {
            signal_all(SIGKILL);
            killed = true;
        }
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid == 0 || (pid < 0 && errno == EINTR)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
        }
        if (pid < 0) break;  // ECHILD: nothing left to wait for
        const auto it = std::find(pids.begin(), pids.end(), pid);
        if (it == pids.end()) continue;
        const int r = static_cast<int>(it - pids.begin());
        running[r] = false;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && failed_rank < 0 && failure.empty() && passed_on == 0) {
            failed_rank = r;
            failed_status = status;
            signal_all(SIGTERM);
            kill_at = std::min(kill_at, clock::now() + std::chrono::seconds(grace_s));
        }
    }
    if (passed_on != 0) {
        std::fprintf(stderr, "%s: stopped by signal %d (%s), passed on to every rank\n", who,
                     passed_on, strsignal(passed_on));
        return 128 + passed_on;
    }
    if (!failure.empty()) {
        std::fprintf(stderr, "%s: error: %s; stopped the other ranks\n", who, failure.c_str());
        return 1;
    }
    if (failed_rank >= 0) {
        std::fprintf(stderr, "%s: error: rank %d of %d %s; stopped the other ranks\n", who,
                     failed_rank, ranks, describe(failed_status).c_str());
        // Its own exit status when it exited (2: usage, 3: the sweep's --time-limit stop, which
        // every rank takes together), so a caller sees what one process would have said.
        return WIFEXITED(failed_status) ? WEXITSTATUS(failed_status) : 1;
    }
    return 0;
}

// Replaces this process with `mpirun -np ranks ... program args`: OpenMPI's --oversubscribe (more
// ranks than cores is allowed), --allow-run-as-root when running as root, and --bind-to none
// with OMP_NUM_THREADS = cores / ranks unless set, so the ranks' OpenMP threads share the cores
// instead of each rank being pinned to one. Throws when mpirun is not on PATH or cannot start.
[[noreturn]] inline void exec_under_mpirun(const std::string& program,
                                           const std::vector<std::string>& args, int ranks,
                                           const char* who) {
    const std::string mpirun = find_on_path("mpirun");
    require(!mpirun.empty(),
            std::string("--nproc ") + std::to_string(ranks) +
                ": the CPU backend's ranks talk over MPI and need mpirun to start them, and there "
                "is no mpirun on PATH: install OpenMPI (Debian: apt-get install openmpi-bin) or "
                "add it to PATH, or train on the GPU (--device cuda)");
    std::vector<std::string> command{mpirun, "-np", std::to_string(ranks), "--oversubscribe",
                                     "--bind-to", "none"};
    if (::geteuid() == 0) command.push_back("--allow-run-as-root");
    if (!std::getenv("OMP_NUM_THREADS")) {
        const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        command.push_back("-x");
        command.push_back("OMP_NUM_THREADS=" +
                          std::to_string(std::max(1u, cores / static_cast<unsigned>(ranks))));
    }
    command.push_back(program);
    command.insert(command.end(), args.begin(), args.end());
    std::string shown;
    for (const auto& c : command) shown += (shown.empty() ? "" : " ") + c;
    std::fprintf(stderr, "%s: starting %d ranks on this machine: %s\n", who, ranks, shown.c_str());
    std::fflush(stderr);
    auto argv = launch_local_detail::c_array(command);
    ::execv(argv[0], argv.data());
    fail(std::string("--nproc: cannot run ") + mpirun + ": " + std::strerror(errno));
}

}  // namespace slm::cli
