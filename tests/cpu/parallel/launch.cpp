// parallel::from_environment: each launcher's variables, their order of precedence, and a clear
// error (naming the variable and the fix) for every inconsistent combination.
#include "slm/parallel/transport/launch.hpp"

#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "cpu/parallel/scoped_env.hpp"

using slm::parallel::from_environment;
using slm::parallel::Launcher;
using slm::test::contains;
using slm::test::error_of;
using slm::test::ScopedEnv;

TEST_CASE("launch: no launcher variables is one process") {
    ScopedEnv env;
    const auto info = from_environment();
    CHECK(info.launcher == Launcher::none);
    CHECK(info.rank == 0);
    CHECK(info.world_size == 1);
    CHECK(info.local_rank == 0);
    CHECK(info.alone());
    CHECK(info.master_addr.empty());
}

TEST_CASE("launch: OpenMPI, SLURM and torchrun variables") {
    {
        ScopedEnv env({{"OMPI_COMM_WORLD_RANK", "3"},
                       {"OMPI_COMM_WORLD_SIZE", "8"},
                       {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
        const auto info = from_environment();
        CHECK(info.launcher == Launcher::openmpi);
        CHECK(info.rank == 3);
        CHECK(info.world_size == 8);
        CHECK(info.local_rank == 1);
        CHECK(info.master_port == 0);
    }
    {
        ScopedEnv env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "6"}, {"SLURM_LOCALID", "2"},
                       {"MASTER_ADDR", "node01"}, {"MASTER_PORT", "29500"}});
        const auto info = from_environment();
        CHECK(info.launcher == Launcher::slurm);
        CHECK(info.rank == 5);
        CHECK(info.world_size == 6);
        CHECK(info.local_rank == 2);
        CHECK(info.master_addr == "node01");
        CHECK(info.master_port == 29500);
    }
    {
        ScopedEnv env({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"},
                       {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29501"}});
        const auto info = from_environment();
        CHECK(info.launcher == Launcher::torchrun);
        CHECK(info.rank == 1);
        CHECK(info.world_size == 2);
        CHECK(info.local_rank == 1);
        CHECK(info.master_addr == "127.0.0.1");
        CHECK(info.master_port == 29501);
        const auto at = slm::parallel::rendezvous_endpoint(info);
        CHECK(at.host == "127.0.0.1");
        CHECK(at.port == 29501);
    }
}

TEST_CASE("launch: mpirun inside a SLURM job is read as mpirun") {
    // sbatch gives every process SLURM_PROCID=0; mpirun's own variables are the true ranks.
    ScopedEnv env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"},
                   {"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                   {"OMPI_COMM_WORLD_LOCAL_RANK", "2"}, {"RANK", "0"}, {"WORLD_SIZE", "1"}});
    const auto info = from_environment();
    CHECK(info.launcher == Launcher::openmpi);
    CHECK(info.rank == 2);
    CHECK(info.local_rank == 2);
}

TEST_CASE("launch: inconsistent variables name the variable and the fix") {
    auto error_with = [](std::vector<std::pair<std::string, std::string>> vars) {
        ScopedEnv env(std::move(vars));
        return error_of([] { from_environment(); });
    };
    std::string e = error_with({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"},
                                {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}});
    CHECK(contains(e, "RANK=2 is not below WORLD_SIZE=2"));
    CHECK(contains(e, "distinct rank"));

    e = error_with({{"RANK", "one"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}});
    CHECK(contains(e, "RANK='one' is not a rank"));

    e = error_with({{"RANK", "0"}, {"WORLD_SIZE", "2x"}, {"LOCAL_RANK", "0"}});
    CHECK(contains(e, "WORLD_SIZE='2x' is not a world size"));

    e = error_with({{"RANK", "0"}, {"WORLD_SIZE", "0"}});
    CHECK(contains(e, "WORLD_SIZE='0'"));

    e = error_with({{"RANK", "-1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}});
    CHECK(contains(e, "RANK='-1'"));

    e = error_with({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}});
    CHECK(contains(e, "MASTER_ADDR is not"));
    CHECK(contains(e, "MASTER_PORT"));

    e = error_with({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"},
                    {"MASTER_ADDR", "127.0.0.1"}});
    CHECK(contains(e, "MASTER_PORT is not"));

    e = error_with({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"},
                    {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "70000"}});
    CHECK(contains(e, "MASTER_PORT='70000' is not a TCP port"));

    e = error_with({{"RANK", "0"}});
    CHECK(contains(e, "RANK is set but WORLD_SIZE is not"));

    e = error_with({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}});
    CHECK(contains(e, "LOCAL_RANK is not"));

    e = error_with({{"WORLD_SIZE", "2"}});
    CHECK(contains(e, "RANK is not"));

    e = error_with({{"OMPI_COMM_WORLD_RANK", "0"}});
    CHECK(contains(e, "OMPI_COMM_WORLD_SIZE is not"));

    e = error_with({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}});
    CHECK(contains(e, "SLURM_PROCID=4 is not below SLURM_NTASKS=4"));

    e = error_with({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                    {"OMPI_COMM_WORLD_LOCAL_RANK", "5"}});
    CHECK(contains(e, "OMPI_COMM_WORLD_LOCAL_RANK='5' is not a local rank"));
}

TEST_CASE("launch: one torchrun-style process needs no master address") {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
    const auto info = from_environment();
    CHECK(info.world_size == 1);
    CHECK(info.local_rank == 0);
}

TEST_CASE("launch: the rendezvous endpoint is demanded only where it is used") {
    // srun without MASTER_ADDR reads fine (a CPU run over MPI needs none) ...
    ScopedEnv env({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "1"}});
    const auto info = from_environment();
    CHECK(info.world_size == 2);
    // ... but the TCP rendezvous says what to export.
    const std::string e = error_of([&] { slm::parallel::rendezvous_endpoint(info); });
    CHECK(contains(e, "needs MASTER_ADDR and MASTER_PORT"));
    CHECK(contains(e, "scontrol show hostnames"));
}

TEST_CASE("launch: timeouts come from SLM_COMM_TIMEOUT_S and SLM_RENDEZVOUS_TIMEOUT_S") {
    using namespace std::chrono_literals;
    {
        ScopedEnv env;
        CHECK(slm::parallel::collective_timeout() == 600s);
        CHECK(slm::parallel::rendezvous_timeout() == 60s);
    }
    {
        ScopedEnv env({{"SLM_COMM_TIMEOUT_S", "5"}, {"SLM_RENDEZVOUS_TIMEOUT_S", "7"}});
        CHECK(slm::parallel::collective_timeout() == 5s);
        CHECK(slm::parallel::rendezvous_timeout() == 7s);
    }
    ScopedEnv env({{"SLM_COMM_TIMEOUT_S", "soon"}});
    CHECK(contains(error_of([] { slm::parallel::collective_timeout(); }),
                   "SLM_COMM_TIMEOUT_S='soon' is not a timeout in seconds"));
}

TEST_CASE("launch: the rendezvous port is MASTER_PORT, + 1 under torchrun's agent store, or SLM_RENDEZVOUS_PORT") {
    const std::vector<std::pair<std::string, std::string>> torchrun{
        {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"},
        {"MASTER_PORT", "29500"}};
    auto port_with = [&](std::vector<std::pair<std::string, std::string>> extra) {
        auto vars = torchrun;
        vars.insert(vars.end(), extra.begin(), extra.end());
        ScopedEnv env(vars);
        return slm::parallel::rendezvous_endpoint(from_environment()).port;
    };
    CHECK(port_with({}) == 29500);
    CHECK(port_with({{"TORCHELASTIC_USE_AGENT_STORE", "True"}}) == 29501);
    CHECK(port_with({{"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"SLM_RENDEZVOUS_PORT", "31000"}}) == 31000);
    CHECK(port_with({{"SLM_RENDEZVOUS_PORT", "31001"}}) == 31001);
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "h"},
                   {"MASTER_PORT", "1"}, {"SLM_RENDEZVOUS_PORT", "x"}});
    CHECK(contains(error_of([] { from_environment(); }), "SLM_RENDEZVOUS_PORT='x' is not a TCP port"));
}
